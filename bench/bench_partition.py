"""Candle storage at scale (issue 13): read latency with ~47 M one-minute candles stored, against a small table.

    BENCH_REDIS_URL=redis://127.0.0.1:6379/<n> .venv/bin/python -m bench.bench_partition            # 500 symbols
    .venv/bin/python -m bench.bench_partition --symbols 20 --days 20 --keep                         # a quick try

Run alone (not part of bench/run.sh): it needs ~10 GB of disk per copy of the table and tens of minutes.
In its own database (BENCH_DATABASE_URL, default tradingdash_bench_partition, dropped and recreated at the start,
dropped at the end unless --keep), migrated, so the candle table is the partitioned one of market 0009:

1. small: the first two symbols only (a year of 1m bars and 2,500 daily bars each);
2. full: the other symbols added, 375 one-minute bars (09:15-15:30 IST) x `--days` weekdays x `--symbols`
   (500 x 250 x 375 = 46.9 M) plus 2,500 daily bars per symbol, written with binary COPY built by numpy;
3. plain (`--plain`): the same rows copied into an unpartitioned table with the same keys, swapped in under the
   candle table's name, so the same code reads it.

After each stage (VACUUM ANALYZE first) it times one symbol-day of 1m bars (375 rows) and the latest 2,500 daily
bars: through market.selectors' read (`_history_candles_json`: binary-cursor SELECT and orjson rendering, what a
historical request does on a cache miss once its range is known to be stored), and as raw SQL on a Django cursor;
each on one symbol and day repeated (warm) and on a random symbol and day each call; plus one EXPLAIN ANALYZE.
Prices are a seeded random walk on weekdays (no holiday calendar): synthetic, for timing only.
"""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tradingdash_bench_partition")

import numpy as np

from bench.harness import Report, figures_markdown, finish, pct, report_markdown, sample, setup

END_DAY = date(2026, 11, 27)  # a Friday: the last trading day of the generated year
BARS_PER_DAY = 375  # 09:15-15:30 IST
SESSION_OPEN_UTC = timedelta(hours=3, minutes=45)
DAILY_BARS = 2500
SAMPLES = 200
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
COLUMNS = (
    'id, symbol, timeframe, "timestamp", open_price, high_price, low_price, close_price, volume, source, '
    "updated_at, final"
)
HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") * 2
TRAILER = (-1).to_bytes(2, "big", signed=True)


def symbol_name(index: int) -> str:
    return f"B{index:04d}.NS"


def weekdays(end: date, count: int) -> list[date]:
    days, day = [], end
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day -= timedelta(days=1)
    return days[::-1]


def _micros(moments: np.ndarray) -> np.ndarray:
    """datetime64[us] (UTC) -> PostgreSQL's binary timestamptz (microseconds since 2000-01-01)."""
    return (moments - np.datetime64(PG_EPOCH.replace(tzinfo=None), "us")).astype(np.int64)


class Generator:
    """Candles of every symbol as binary COPY rows; each symbol's random walk continues across calls."""

    def __init__(self, symbols: int) -> None:
        self.rngs = [np.random.default_rng(i) for i in range(symbols)]
        self.last = {}  # (symbol index, timeframe) -> last close
        self.next_id = 1
        self.now_us = int(_micros(np.array([np.datetime64(datetime.now(UTC).replace(tzinfo=None), "us")]))[0])

    def block(self, index: int, timeframe: str, stamps: np.ndarray) -> bytes:
        """COPY rows of one symbol and timeframe at `stamps` (datetime64[us], UTC)."""
        n = len(stamps)
        rng = self.rngs[index]
        symbol, source = symbol_name(index).encode(), b"bench"
        tf = timeframe.encode()
        sigma = 0.0005 if timeframe == "1m" else 0.015
        start = self.last.get((index, timeframe), 100.0 + 50 * index % 3000)
        close = start * np.exp(np.cumsum(rng.normal(0, sigma, n)))
        open_ = np.concatenate(([start], close[:-1]))
        high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, sigma / 2, n)))
        low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, sigma / 2, n)))
        self.last[(index, timeframe)] = float(close[-1])
        fields = [("n", ">i2")]
        for name, kind in [
            ("id", ">i8"),
            ("symbol", f"S{len(symbol)}"),
            ("timeframe", f"S{len(tf)}"),
            ("ts", ">i8"),
            ("o", ">f8"),
            ("h", ">f8"),
            ("l", ">f8"),
            ("c", ">f8"),
            ("v", ">i8"),
            ("source", f"S{len(source)}"),
            ("updated", ">i8"),
            ("final", "u1"),
        ]:
            fields += [(f"len_{name}", ">i4"), (name, kind)]
        rows = np.empty(n, dtype=np.dtype(fields))
        rows["n"] = 12
        for name, _ in fields[1::2]:
            rows[name] = np.dtype(dict(fields)[name.removeprefix("len_")]).itemsize
        rows["id"] = np.arange(self.next_id, self.next_id + n)
        self.next_id += n
        rows["symbol"], rows["timeframe"], rows["source"] = symbol, tf, source
        rows["ts"] = _micros(stamps)
        rows["o"], rows["h"], rows["l"], rows["c"] = open_, high, low, close
        rows["v"] = rng.integers(100, 50_000, n)
        rows["updated"] = self.now_us
        rows["final"] = 1
        return rows.tobytes()


def minute_stamps(days: list[date]) -> np.ndarray:
    opens = np.array([np.datetime64(day, "us") + np.timedelta64(SESSION_OPEN_UTC) for day in days])
    return (opens[:, None] + np.arange(BARS_PER_DAY) * np.timedelta64(1, "m")).ravel()


def daily_stamps(days: list[date]) -> np.ndarray:
    # A daily bar opens at midnight exchange time (18:30 UTC the evening before), as the providers stamp them.
    return np.array([np.datetime64(day, "us") - np.timedelta64(330, "m") for day in days])


def _copy(chunks) -> int:
    """One binary COPY of the chunks, in its own transaction. Returns the bytes written."""
    from django.db import connection, transaction

    written = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        with cursor.cursor.copy(f"COPY market_marketdata ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(HEADER)
            for chunk in chunks:
                copy.write(chunk)
                written += len(chunk)
            copy.write(TRAILER)
    return written


def load(gen: Generator, symbols: range, days: list[date]) -> tuple[int, float]:
    """COPY a year of 1m bars (month by month, symbol by symbol) and 2,500 daily bars of `symbols`."""
    started, rows = time.perf_counter(), 0
    by_month: dict[tuple[int, int], list[date]] = {}
    for day in days:
        by_month.setdefault((day.year, day.month), []).append(day)
    for month_days in by_month.values():
        stamps = minute_stamps(month_days)
        _copy(gen.block(i, "1m", stamps) for i in symbols)
        rows += len(stamps) * len(symbols)
        elapsed = time.perf_counter() - started
        print(f"  {month_days[0]:%Y-%m}: {rows:,} rows, {rows / elapsed:,.0f} rows/s", flush=True)
    stamps = daily_stamps(weekdays(END_DAY, DAILY_BARS))
    _copy(gen.block(i, "1D", stamps) for i in symbols)
    rows += len(stamps) * len(symbols)
    return rows, time.perf_counter() - started


def _sql(statement: str, params=None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def create_partitions(first: date, last: date) -> int:
    from market.partitions import add_months, candle_partition_create, month_start

    month, created = month_start(first), 0
    while month <= month_start(last):
        created += candle_partition_create(month) is not None
        month = add_months(month, 1)
    return created


def vacuum() -> float:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE market_marketdata")
    return time.perf_counter() - started


DAY_SQL = """SELECT "timestamp", open_price, high_price, low_price, close_price, volume, final, source
FROM market_marketdata WHERE symbol = %s AND timeframe = '1m' AND "timestamp" >= %s AND "timestamp" < %s
ORDER BY "timestamp" """
DAILY_SQL = """SELECT "timestamp", open_price, high_price, low_price, close_price, volume, final, source
FROM market_marketdata WHERE symbol = %s AND timeframe = '1D' ORDER BY "timestamp" DESC LIMIT 2500"""


def _explain(statement: str, params) -> str:
    import json

    (output,) = _sql("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, params)[0]
    plan = (json.loads(output) if isinstance(output, str) else output)[0]
    scans = []

    def walk(node):
        if "Relation Name" in node and node.get("Actual Loops", 0) > 0:
            scans.append(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    pages = plan["Plan"].get("Shared Hit Blocks", 0) + plan["Plan"].get("Shared Read Blocks", 0)
    return (
        f"planning {plan['Planning Time']:.2f} ms, execution {plan['Execution Time']:.2f} ms, "
        f"{len(scans)} table(s) scanned, {pages} pages read (8 KiB buffers, hit or read)"
    )


def measure(stage: str, symbols: int, days: list[date], report: Report, rows_stored: int) -> None:
    from market.selectors import _history_candles_json
    from market.timeframes import Timeframe

    rng = random.Random(13)

    def day_range(day: date) -> tuple[datetime, datetime]:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC) + SESSION_OPEN_UTC
        return start, start + timedelta(days=1)

    def selector_day(symbol: str, day: date) -> None:
        start, end = day_range(day)
        count, _, _ = _history_candles_json(
            symbol=symbol, timeframe=Timeframe.M1, start=start, end=end, limit=500, from_start=True
        )
        assert count == BARS_PER_DAY, count

    def selector_daily(symbol: str) -> None:
        count, _, _ = _history_candles_json(
            symbol=symbol, timeframe=Timeframe.D1, start=None, end=None, limit=DAILY_BARS
        )
        assert count == DAILY_BARS, count

    def raw_day(symbol: str, day: date) -> None:
        assert len(_sql(DAY_SQL, [symbol, *day_range(day)])) == BARS_PER_DAY

    def raw_daily(symbol: str) -> None:
        assert len(_sql(DAILY_SQL, [symbol])) == DAILY_BARS

    one, day = symbol_name(1), days[-10]
    pick = lambda: symbol_name(rng.randrange(symbols))  # noqa: E731
    cases = [
        ("selector, one symbol-day of 1m (375 bars), same each call", lambda: selector_day(one, day)),
        (
            "selector, one symbol-day of 1m, random symbol and day",
            lambda: selector_day(pick(), rng.choice(days)),
        ),
        ("raw SQL, one symbol-day of 1m, same each call", lambda: raw_day(one, day)),
        ("raw SQL, one symbol-day of 1m, random symbol and day", lambda: raw_day(pick(), rng.choice(days))),
        ("selector, latest 2,500 daily bars, same symbol", lambda: selector_daily(one)),
        ("selector, latest 2,500 daily bars, random symbol", lambda: selector_daily(pick())),
        ("raw SQL, latest 2,500 daily bars, same symbol", lambda: raw_daily(one)),
        ("raw SQL, latest 2,500 daily bars, random symbol", lambda: raw_daily(pick())),
    ]
    for name, fn in cases:
        fn()  # the first call pays for connection set-up and plan caching
        times = sample(fn, repeat=SAMPLES)
        report.add(
            area=stage,
            name=name,
            value=f"p50 {pct(times, 50):.2f} ms",
            detail=f"p95 {pct(times, 95):.2f} ms, max {max(times):.2f} ms, n={len(times)}; {rows_stored:,} rows",
        )
    report.add(
        area=stage, name="EXPLAIN ANALYZE, symbol-day", value=_explain(DAY_SQL, [one, *day_range(day)])
    )
    report.add(area=stage, name="EXPLAIN ANALYZE, 2,500 daily", value=_explain(DAILY_SQL, [one]))
    print(
        figures_markdown([f for f in report.figures if f.area == stage]), flush=True
    )  # in case of a later stop


def make_plain() -> float:
    """An unpartitioned copy with the same columns and keys, swapped in under the candle table's name."""
    started = time.perf_counter()
    statements = [
        "CREATE TABLE bench_plain (LIKE market_marketdata INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
        "INSERT INTO bench_plain SELECT * FROM market_marketdata",
        "ALTER TABLE bench_plain ADD CONSTRAINT bench_plain_pkey PRIMARY KEY (id)",
        'ALTER TABLE bench_plain ADD CONSTRAINT bench_plain_unique UNIQUE (symbol, timeframe, "timestamp")',
        "ALTER TABLE market_marketdata RENAME TO bench_partitioned",
        "ALTER TABLE bench_plain RENAME TO market_marketdata",
    ]
    for statement in statements:
        _sql(statement)
    return time.perf_counter() - started


def table_size() -> str:
    (size,) = _sql(
        """SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c
           WHERE c.oid IN (SELECT relid FROM pg_partition_tree('market_marketdata')
                           UNION SELECT 'market_marketdata'::regclass)"""
    )[0]
    return size


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--days", type=int, default=250, help="weekdays of 1m bars per symbol")
    parser.add_argument("--plain", action="store_true", help="also measure an unpartitioned copy")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()

    drop_database()
    setup()
    from django.db import connection

    days = weekdays(END_DAY, args.days)
    report = Report()
    gen = Generator(args.symbols)
    created = create_partitions(days[0], END_DAY)  # daily bars go to the coarse partition
    print(f"{created} monthly partitions created", flush=True)

    small = range(min(2, args.symbols))
    rows, seconds = load(gen, small, days)
    report.notes.append(f"small: {rows:,} rows written in {seconds:.0f} s; VACUUM ANALYZE {vacuum():.0f} s")
    measure("small", len(small), days, report, rows)

    rest = range(len(small), args.symbols)
    more, seconds = load(gen, rest, days)
    rows += more
    report.notes.append(
        f"full: {more:,} more rows written by binary COPY in {seconds:.0f} s ({more / seconds:,.0f} rows/s); "
        f"VACUUM ANALYZE {vacuum():.0f} s; table with indexes {table_size()}"
    )
    _sql("SELECT setval('market_marketdata_id_seq', %s)", [gen.next_id])
    measure("full, partitioned", args.symbols, days, report, rows)

    if args.plain:
        seconds = make_plain()
        report.notes.append(
            f"plain: copied and indexed in {seconds:.0f} s; VACUUM ANALYZE {vacuum():.0f} s; {table_size()}"
        )
        connection.close()  # no prepared statement may outlive the swap
        measure("full, unpartitioned", args.symbols, days, report, rows)

    connection.close()
    print(report_markdown(report))
    if args.json:
        finish(report, args.json)
    if not args.keep:
        drop_database()


def drop_database() -> None:
    import environ
    import psycopg
    from psycopg import sql

    config = environ.Env.db_url_config(os.environ["BENCH_DATABASE_URL"])
    with psycopg.connect(
        dbname="postgres",
        host=config["HOST"],
        port=config["PORT"] or None,
        user=config["USER"],
        autocommit=True,
    ) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(config["NAME"]))
        )


if __name__ == "__main__":
    main()
