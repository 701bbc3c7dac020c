from django.db import migrations

# TRUNCATE fires no insert, update or delete trigger: the triggers of 0014 never saw it, and every month stayed
# rendered, and served, with no bar left under it. After a TRUNCATE of the candle table, or of the partition that
# holds its daily bars (market_marketdata_coarse, migration 0011; truncating the parent fires the partition's
# trigger too), no month has a bar: their rows go. Bars stored again later create their rows as any insert does.
_FUNCTION = """
CREATE FUNCTION market_rendered_months_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM market_renderedmonth WHERE timeframe = '1D';
    RETURN NULL;
END
$$;
"""
_TRIGGER = """
CREATE TRIGGER market_rendered_months_truncate AFTER TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION market_rendered_months_truncated();
"""
_DROP = """
DROP TRIGGER IF EXISTS market_rendered_months_truncate ON {table};
"""
TABLES = ("market_marketdata", "market_marketdata_coarse")


def _tables(schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [TABLES[1]])
        partitioned = cursor.fetchone()[0]
    return TABLES if partitioned else TABLES[:1]


def triggers_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_FUNCTION)
        for table in _tables(schema_editor):
            schema_editor.execute(_TRIGGER.format(table=table))


def triggers_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in _tables(schema_editor):
            schema_editor.execute(_DROP.format(table=table))
        schema_editor.execute("DROP FUNCTION IF EXISTS market_rendered_months_truncated();")


class Migration(migrations.Migration):
    dependencies = [
        ("market", "0014_rendered_months"),
    ]

    operations = [
        migrations.RunPython(triggers_create, triggers_drop),
    ]
