from django.db import migrations

# Every month with daily bars has a RenderedMonth row (migration 0014's triggers): a read joins the months' rows and
# takes a month without one for a month without bars. A row deleted by hand (SQL, a shell) while its month still had
# bars broke that: reads answered with the month missing, or short. After a statement deletes rows of months that
# still have daily bars, those rows come back stale in the same statement; readers read a stale month from its bars,
# and the beat renders it again. The deletes the code makes are of months left without a bar
# (market.services.rendered_months_refresh) and of every month after a TRUNCATE (0015): neither comes back. Writes
# with triggers off (session_replication_role = replica) still need `render_months --rebuild`.
_FUNCTION = """
CREATE FUNCTION market_rendered_months_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO market_renderedmonth
        (symbol, timeframe, month, stale, time_zone, tick, times, ends, finals, sources, body)
    SELECT DISTINCT gone.symbol, gone.timeframe, gone.month, true,
           '', '', ''::bytea, ''::bytea, ''::bytea, '', ''::bytea
    FROM gone_rows AS gone
    WHERE gone.timeframe = '1D' AND EXISTS (
        SELECT 1 FROM market_marketdata AS bar
        WHERE bar.symbol = gone.symbol AND bar.timeframe = '1D'
          AND bar."timestamp" >= gone.month::timestamp AT TIME ZONE 'UTC'
          AND bar."timestamp" < (gone.month + interval '1 month')::timestamp AT TIME ZONE 'UTC'
    )
    ORDER BY 1, 2, 3  -- the lock order of the candle triggers
    ON CONFLICT (symbol, timeframe, month) DO UPDATE SET stale = true;
    RETURN NULL;
END
$$;
CREATE TRIGGER market_rendered_months_kept AFTER DELETE ON market_renderedmonth
    REFERENCING OLD TABLE AS gone_rows FOR EACH STATEMENT EXECUTE FUNCTION market_rendered_months_kept();
"""
_DROP = """
DROP TRIGGER IF EXISTS market_rendered_months_kept ON market_renderedmonth;
DROP FUNCTION IF EXISTS market_rendered_months_kept();
"""


def trigger_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_FUNCTION)


def trigger_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("market", "0016_rendered_months_partition_writes"),
    ]

    operations = [
        migrations.RunPython(trigger_create, trigger_drop),
    ]
