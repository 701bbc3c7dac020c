from django.db import migrations

# A statement that names a partition fires that partition's statement triggers, not the parent's: an insert,
# update or delete of daily bars written to market_marketdata_coarse (migration 0011) directly, as SQL may, left
# their months current, and served, as 0014's triggers never ran. The same function on the partition; a write
# through market_marketdata fires only the parent's, so no write marks its months twice.
_TRIGGERS = """
CREATE TRIGGER market_rendered_months_insert AFTER INSERT ON market_marketdata_coarse
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION market_rendered_months_touch();
CREATE TRIGGER market_rendered_months_update AFTER UPDATE ON market_marketdata_coarse
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION market_rendered_months_touch();
CREATE TRIGGER market_rendered_months_delete AFTER DELETE ON market_marketdata_coarse
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION market_rendered_months_touch();
"""
_DROP = """
DROP TRIGGER IF EXISTS market_rendered_months_insert ON market_marketdata_coarse;
DROP TRIGGER IF EXISTS market_rendered_months_update ON market_marketdata_coarse;
DROP TRIGGER IF EXISTS market_rendered_months_delete ON market_marketdata_coarse;
"""


def _partitioned(schema_editor) -> bool:
    if schema_editor.connection.vendor != "postgresql":
        return False
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('market_marketdata_coarse') IS NOT NULL")
        return cursor.fetchone()[0]


def triggers_create(apps, schema_editor):
    if _partitioned(schema_editor):
        schema_editor.execute(_TRIGGERS)


def triggers_drop(apps, schema_editor):
    if _partitioned(schema_editor):
        schema_editor.execute(_DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("market", "0015_rendered_months_truncate"),
    ]

    operations = [
        migrations.RunPython(triggers_create, triggers_drop),
    ]
