"""On PostgreSQL, partition market_marketdata: minute bars by month, keeping every row.

Two levels. By LIST on timeframe: 1m, 5m and 15m bars (nearly all the rows: 1m bars of 500 symbols are ~47 M a
year) go to market_marketdata_intraday, itself range-partitioned by month on "timestamp"; 1H, 1D, 1W and any other
timeframe go to one plain partition, market_marketdata_coarse. A 2,500-bar daily read spans ten years: over
monthly partitions it had to open 120 of them (bench/README.md, "Candle storage at scale"), in the coarse
partition it reads one index, as before.

A partitioned table's primary key and unique constraints must include the partition columns, so the primary key
becomes (id, timeframe, "timestamp") while Django keeps `id` as the model's primary key (ids still come from one
sequence, so `id` stays unique in practice, and the admin and `pk` lookups work as before); market_candle_unique
on (symbol, timeframe, "timestamp") already includes both. PostgreSQL 15 allows no identity column on a
partitioned table: `id` takes its values from a sequence owned by the column, which Django's sequence reset also
finds. Monthly partitions: from the oldest stored minute bar to three months ahead, and a default one for the
rest; market.partitions.candle_partitions_ensure (beat task, `manage.py ensure_candle_partitions`) keeps creating
them.

The table is copied under an exclusive lock: a few seconds per million rows. Django's model state is unchanged,
and on other databases (SQLite for `make run`) this does nothing. Reversible: the reverse copies the rows back
into a plain table with an identity `id`.
"""

from datetime import UTC, date, datetime

from django.db import migrations
from django.utils import timezone

TABLE = "market_marketdata"
INTRADAY = f"{TABLE}_intraday"
INTRADAY_TIMEFRAMES = "'1m', '5m', '15m'"  # as market.partitions.INTRADAY_TIMEFRAMES
MONTHS_AHEAD = 3  # as market.partitions.MONTHS_AHEAD, copied so this migration never changes with the app


def _add_months(month, months):
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _bound(month):
    return datetime(month.year, month.month, 1, tzinfo=UTC).isoformat()


def _columns(cursor, table):
    cursor.execute(
        "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute"
        " WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
        [table],
    )
    return cursor.fetchone()[0]


def _keys_and_indexes(cursor, table):
    """(unique and exclusion constraints as (name, definition), other indexes' CREATE statements) of a table,
    except its primary key: what has to be recreated on the table that replaces it."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = to_regclass(%s) AND contype IN ('u', 'x') ORDER BY conname",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        """SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
           WHERE i.indrelid = to_regclass(%s)
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid
                             AND c.conrelid = i.indrelid)
           ORDER BY i.indexrelid""",
        [table],
    )
    indexes = [row[0] for row in cursor.fetchall()]
    return constraints, indexes


def _recreate_keys(cursor, table, primary_key, constraints, indexes):
    cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({primary_key})")
    for name, definition in constraints:
        cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
    for statement in indexes:
        # "CREATE INDEX name ON [ONLY] public.old_table USING ..." -> on the new table.
        head, _, tail = statement.partition(" USING ")
        head = head.rsplit(" ON ", 1)[0]
        cursor.execute(f"{head} ON {table} USING {tail}")


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    old = f"{TABLE}_unpartitioned"
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
        if cursor.fetchone()[0] == "p":
            return
        cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(f"SELECT max(id) FROM {TABLE}")  # nosec B608: constant table names, columns read from the catalogue
        max_id = cursor.fetchone()[0]
        cursor.execute(
            f"""SELECT date_trunc('month', min("timestamp"), 'UTC')::date FROM {TABLE}
                WHERE timeframe IN ({INTRADAY_TIMEFRAMES})"""  # nosec B608: constant names
        )
        first = cursor.fetchone()[0]
        constraints, indexes = _keys_and_indexes(cursor, TABLE)
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {old}")
        # Frees the name market_marketdata_id_seq (identity sequence); a serial column's default goes too.
        cursor.execute(f"ALTER TABLE {old} ALTER COLUMN id DROP IDENTITY IF EXISTS")
        cursor.execute(f"ALTER TABLE {old} ALTER COLUMN id DROP DEFAULT")
        cursor.execute(f"DROP SEQUENCE IF EXISTS {TABLE}_id_seq")
        cursor.execute(
            f"""CREATE TABLE {TABLE} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE
                INCLUDING COMMENTS) PARTITION BY LIST (timeframe)"""
        )
        cursor.execute(f"CREATE SEQUENCE {TABLE}_id_seq AS bigint OWNED BY {TABLE}.id")
        cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN id SET DEFAULT nextval('{TABLE}_id_seq')")
        if max_id is not None:
            cursor.execute("SELECT setval(%s, %s)", [f"{TABLE}_id_seq", max_id])

        cursor.execute(
            f"""CREATE TABLE {INTRADAY} PARTITION OF {TABLE} FOR VALUES IN ({INTRADAY_TIMEFRAMES})
                PARTITION BY RANGE ("timestamp")"""
        )
        cursor.execute(f"CREATE TABLE {TABLE}_coarse PARTITION OF {TABLE} DEFAULT")
        this_month = date(*timezone.now().astimezone(UTC).timetuple()[:2], 1)
        month, until = min(first or this_month, this_month), _add_months(this_month, MONTHS_AHEAD)
        while month <= until:
            name = f"{TABLE}_y{month.year:04d}m{month.month:02d}"
            cursor.execute(
                f"CREATE TABLE {name} PARTITION OF {INTRADAY}"
                f" FOR VALUES FROM ('{_bound(month)}') TO ('{_bound(_add_months(month, 1))}')"
            )
            month = _add_months(month, 1)
        cursor.execute(f"CREATE TABLE {INTRADAY}_default PARTITION OF {INTRADAY} DEFAULT")

        columns = _columns(cursor, old)
        cursor.execute(f"INSERT INTO {TABLE} ({columns}) SELECT {columns} FROM {old}")  # nosec B608: constant table names, columns read from the catalogue
        cursor.execute(f"DROP TABLE {old}")
        # Keys after the copy: building an index once is faster than maintaining it row by row.
        _recreate_keys(cursor, TABLE, 'id, timeframe, "timestamp"', constraints, indexes)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    old = f"{TABLE}_partitioned"
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
        if cursor.fetchone()[0] != "p":
            return
        cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(f"SELECT max(id) FROM {TABLE}")  # nosec B608: constant table names, columns read from the catalogue
        max_id = cursor.fetchone()[0]
        constraints, indexes = _keys_and_indexes(cursor, TABLE)
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {old}")
        cursor.execute(f"ALTER TABLE {old} ALTER COLUMN id DROP DEFAULT")
        cursor.execute(f"DROP SEQUENCE IF EXISTS {TABLE}_id_seq")
        cursor.execute(
            f"""CREATE TABLE {TABLE} (LIKE {old} INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS)"""
        )
        cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY")
        columns = _columns(cursor, old)
        cursor.execute(f"INSERT INTO {TABLE} ({columns}) SELECT {columns} FROM {old}")  # nosec B608: constant table names, columns read from the catalogue
        if max_id is not None:
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [TABLE, max_id])
        cursor.execute(f"DROP TABLE {old}")
        _recreate_keys(cursor, TABLE, "id", constraints, indexes)


class Migration(migrations.Migration):
    dependencies = [("market", "0010_market_session")]

    operations = [migrations.RunPython(partition, unpartition, elidable=False)]
