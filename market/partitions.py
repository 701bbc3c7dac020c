"""The candle table's partitions on PostgreSQL (migration 0011).

`market_marketdata` is list-partitioned on timeframe: minute bars (1m, 5m, 15m: nearly all the rows) go to
`market_marketdata_intraday`, range-partitioned on "timestamp" with one partition per calendar month (UTC) and a
default partition for months without one (a backfill of old history, or a month the ahead-creation has not
reached); hourly and longer bars go to one plain partition, `market_marketdata_coarse`, so a 2,500-bar daily read
opens one index rather than 120 monthly ones. `candle_partitions_ensure` creates the monthly partitions of the
coming months and moves whatever the default partition holds into partitions of its own, so the default stays
empty and a read of a symbol-day touches one month's table. It runs from a beat task and
`manage.py ensure_candle_partitions`; running it twice changes nothing. Other databases (SQLite for `make run`)
have one plain table and nothing to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import structlog
from django.db import connection, transaction
from django.utils import timezone

logger = structlog.get_logger(__name__)

TABLE = "market_marketdata"
INTRADAY = f"{TABLE}_intraday"  # minute bars, partitioned by month
INTRADAY_TIMEFRAMES = ("1m", "5m", "15m")
COARSE = f"{TABLE}_coarse"  # every other timeframe, one plain table
DEFAULT_PARTITION = f"{INTRADAY}_default"
MONTHS_AHEAD = 3
# Creating or attaching a partition needs brief exclusive locks; give up rather than queue the candle writers
# and readers behind a long transaction. The next run tries again (rows meanwhile land in the default).
LOCK_TIMEOUT = "5s"


@dataclass(frozen=True, kw_only=True)
class PartitionsResult:
    created: list[str] = field(default_factory=list)
    moved: int = 0  # rows moved out of the default partition
    partitioned: bool = True  # False: not PostgreSQL, or the table is not partitioned; nothing was done


def month_start(moment: datetime | date) -> date:
    return date(moment.year, moment.month, 1)


def add_months(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{TABLE}_y{month.year:04d}m{month.month:02d}"


def _bound(month: date) -> str:
    return datetime(month.year, month.month, 1, tzinfo=UTC).isoformat()


def candle_table_partitioned() -> bool:
    """The candle table is a partitioned table here (PostgreSQL after the partitioning migration)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
        row = cursor.fetchone()
    return bool(row and row[0])


def candle_partitions() -> list[tuple[str, str]]:
    """(partition, bounds) of every table holding candles, in name order; empty when not partitioned."""
    if not candle_table_partitioned():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
            FROM pg_partition_tree(to_regclass(%s)) t JOIN pg_class c ON c.oid = t.relid
            WHERE t.isleaf ORDER BY c.relname
            """,
            [TABLE],
        )
        return cursor.fetchall()


def candle_partitions_ensure(
    *, months_ahead: int = MONTHS_AHEAD, now: datetime | None = None
) -> PartitionsResult:
    """Create the minute bars' partitions of this month and the next `months_ahead`, and give every month
    found in the default partition its own partition (moving its rows there). Idempotent; concurrent runs
    serialise on an advisory lock."""
    if not candle_table_partitioned():
        return PartitionsResult(partitioned=False)
    this_month = month_start(timezone.localtime(now or timezone.now(), UTC))
    wanted = {add_months(this_month, i) for i in range(months_ahead + 1)}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT DISTINCT date_trunc('month', "timestamp", 'UTC')::date FROM {DEFAULT_PARTITION}"""  # noqa: S608  # nosec B608: a constant name
        )
        stranded = {row[0] for row in cursor.fetchall()}
    created, moved = [], 0
    for month in sorted(wanted | stranded):
        rows = candle_partition_create(month)
        if rows is not None:
            created.append(partition_name(month))
            moved += rows
    if created:
        logger.info("candle_partitions_created", partitions=created, moved=moved)
    return PartitionsResult(created=created, moved=moved)


def candle_partition_create(month: date) -> int | None:
    """Create the minute bars' partition of `month` with the default partition's rows of that month; None if it
    exists.

    The partition is built as a plain table and attached, rather than CREATE TABLE ... PARTITION OF: attaching
    locks the parent only in SHARE UPDATE EXCLUSIVE mode, so candle reads and writes go on meanwhile, and rows
    of that month already in the default partition can be moved first (a default holding rows of a new
    partition's range would make the attachment fail)."""
    name = partition_name(month)
    start, end = _bound(month), _bound(add_months(month, 1))
    timeframes = ", ".join(f"'{timeframe}'" for timeframe in INTRADAY_TIMEFRAMES)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [TABLE])
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        if cursor.fetchone()[0]:
            return None
        cursor.execute(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        # The partition constraint, declared beforehand, spares ATTACH a scan of the new table.
        cursor.execute(
            f"""ALTER TABLE {name} ADD CONSTRAINT {name}_bounds
                CHECK (timeframe IN ({timeframes}) AND "timestamp" >= %s::timestamptz
                       AND "timestamp" < %s::timestamptz)""",
            [start, end],
        )
        cursor.execute(
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute"
            " WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
            [TABLE],
        )
        columns = cursor.fetchone()[0]
        cursor.execute(
            f"""WITH moved AS (
                    DELETE FROM {DEFAULT_PARTITION}
                    WHERE "timestamp" >= %s::timestamptz AND "timestamp" < %s::timestamptz RETURNING {columns}
                )
                INSERT INTO {name} ({columns}) SELECT {columns} FROM moved""",  # noqa: S608  # nosec B608: names from the catalogue
            [start, end],
        )
        moved = cursor.rowcount
        cursor.execute(
            # Bounds are literals in DDL; they are formatted dates, never user input.
            f"ALTER TABLE {INTRADAY} ATTACH PARTITION {name} FOR VALUES FROM ('{start}') TO ('{end}')"
        )
        cursor.execute(f"ALTER TABLE {name} DROP CONSTRAINT {name}_bounds")
    return moved
