"""Market (issue 3): candle upsert throughput into PostgreSQL, historical and quote endpoint server times.

    python -m bench.bench_market            (or bench/run.sh for every benchmark)

Upsert: 100,000 one-minute candles through market.services.candles_upsert, fresh (after deleting them), again with
every price changed (every row updated) and once more the same (every row unchanged: compared, not written). Where the time goes is measured too (SQL vs Python), and the same rows
go through a COPY-into-a-temp-table + INSERT ... ON CONFLICT prototype, to size the fix proposed in the README.
Endpoints: the Django test client with a JWT-authenticated user; time around client.get(), i.e. the whole
server side (middleware, authentication, view, JSON rendering) without a network.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict

import numpy as np
import pandas as pd

from bench.harness import (
    Report,
    cli,
    daily_candles,
    finish,
    jwt_client,
    pct,
    sample,
    setup,
    spread,
    store_daily_candles,
    timed,
)

UPSERT_ROWS = 100_000
UPSERT_REPEATS = 3
UPSERT_TARGET = 50_000  # rows/s
DAILY_UPSERT_ROWS = 2_500
DAILY_UPSERT_SYMBOL = "BENCHDAILY.NS"
UPSERT_SYMBOL = "BENCHUPSERT.NS"
COPY_SYMBOL = "BENCHCOPY.NS"
SYMBOL = "RELIANCE.NS"  # in the seeded catalogue, so the synthetic provider serves it
HISTORY_BARS = 2500
REQUESTS = 200
HISTORY_TARGET_MS = 15.0

STAGE_SQL = """
CREATE TEMP TABLE bench_candle_stage (
    "timestamp" timestamptz NOT NULL,
    open_price float8 NOT NULL,
    high_price float8 NOT NULL,
    low_price float8 NOT NULL,
    close_price float8 NOT NULL,
    volume int8 NOT NULL
) ON COMMIT DROP
"""
MERGE_SQL = """
WITH proposed AS MATERIALIZED (
    SELECT nextval(pg_get_serial_sequence('market_marketdata', 'id')) AS id, * FROM bench_candle_stage
),
written AS (
    INSERT INTO market_marketdata
        (id, symbol, timeframe, "timestamp", open_price, high_price, low_price, close_price, volume, source,
         final, updated_at)
    SELECT id, %(symbol)s, %(timeframe)s, "timestamp", open_price, high_price, low_price, close_price, volume,
           %(source)s, TRUE, %(now)s  -- the bench's bars are years old: closed
    FROM proposed
    ON CONFLICT (symbol, timeframe, "timestamp") DO UPDATE SET
        open_price = EXCLUDED.open_price, high_price = EXCLUDED.high_price, low_price = EXCLUDED.low_price,
        close_price = EXCLUDED.close_price, volume = EXCLUDED.volume, source = EXCLUDED.source,
        final = EXCLUDED.final, updated_at = EXCLUDED.updated_at
    RETURNING id  -- inserted rows carry one of the proposed ids (no xmax on a partitioned table)
)
SELECT count(proposed.id), count(*) - count(proposed.id) FROM written LEFT JOIN proposed USING (id)
"""


def minute_candles(n: int) -> pd.DataFrame:
    """n valid one-minute candles (a seeded random walk) in the candle frame convention."""
    rng = np.random.default_rng(7)
    index = pd.date_range("2024-01-01 03:45", periods=n, freq="min", tz="UTC", name="timestamp").as_unit("us")
    close = 2500 * np.exp(np.cumsum(rng.normal(0, 0.0005, n)))
    open_ = np.concatenate(([2500.0], close[:-1]))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.0003, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.0003, n)))
    volume = rng.integers(100, 10_000, n, dtype="int64")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


class SqlTimer:
    """connection.execute_wrapper that adds up the time spent inside cursor.execute, per statement kind."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def __call__(self, execute, sql, params, many, context):
        kind = sql.split(None, 1)[0].upper()
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds[kind] += time.perf_counter() - started
            self.calls[kind] += 1

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def _forget(symbol: str) -> None:
    """Delete a symbol's candles and vacuum, so every fresh-insert run starts from the same table state."""
    from django.db import connection

    from market.models import MarketData

    MarketData.objects.filter(symbol=symbol).delete()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE market_marketdata")


def copy_upsert(
    *, symbol: str, timeframe, candles: pd.DataFrame, source: str
) -> tuple[int, int, float, float]:
    """The proposed write path: COPY the rows into a temp table, then one INSERT ... SELECT ... ON CONFLICT that
    also reports inserted vs updated exactly. Returns (inserted, updated, copy seconds, merge seconds)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from market.providers.base import validate_candles

    valid, _ = validate_candles(candles)
    rows = zip(
        valid.index.to_pydatetime(),
        valid["open"].tolist(),
        valid["high"].tolist(),
        valid["low"].tolist(),
        valid["close"].tolist(),
        valid["volume"].tolist(),
        strict=True,
    )
    with transaction.atomic(), connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(STAGE_SQL)
        with cursor.cursor.copy("COPY bench_candle_stage FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["timestamptz", "float8", "float8", "float8", "float8", "int8"])
            for row in rows:
                copy.write_row(row)
        copied = time.perf_counter()
        cursor.execute(
            MERGE_SQL,
            {"symbol": symbol, "timeframe": timeframe.value, "source": source, "now": timezone.now()},
        )
        inserted, updated = cursor.fetchone()
        merged = time.perf_counter()
    return inserted, updated, copied - started, merged - copied


def bench_upsert(report: Report) -> None:
    from django.db import connection

    from market.providers.base import validate_candles
    from market.services import candles_upsert
    from market.timeframes import Timeframe

    candles = minute_candles(UPSERT_ROWS)
    # The same bars corrected: every price 0.1% higher (still valid OHLC), so a re-upsert rewrites every row.
    corrected = candles.copy()
    corrected[["open", "high", "low", "close"]] *= 1.001

    def upsert(frame=candles):
        return candles_upsert(symbol=UPSERT_SYMBOL, timeframe=Timeframe.M1, candles=frame, source="bench")

    fresh, update, same = [], [], []
    for _ in range(UPSERT_REPEATS):
        _forget(UPSERT_SYMBOL)
        seconds, result = timed(upsert)
        assert result.inserted == UPSERT_ROWS and result.updated == 0, result
        fresh.append(seconds)
        seconds, result = timed(lambda: upsert(corrected))
        assert result.inserted == 0 and result.updated == UPSERT_ROWS, result
        update.append(seconds)
        seconds, result = timed(lambda: upsert(corrected))
        assert result.inserted == result.updated == 0 and result.unchanged == UPSERT_ROWS, result
        same.append(seconds)

    for label, runs in (
        ("fresh insert", fresh),
        ("re-upsert, every price changed (all rows updated)", update),
        ("re-upsert, the same values (all rows unchanged)", same),
    ):
        rate = UPSERT_ROWS / float(np.median(runs))
        report.add(
            area="Market",
            name=f"`candles_upsert` 100,000 1m candles, {label}",
            value=f"{rate:,.0f} rows/s",
            target=f"≥ {UPSERT_TARGET:,} rows/s",
            passed=rate >= UPSERT_TARGET,
            detail=f"median of {UPSERT_REPEATS}: " + ", ".join(f"{s:.2f} s" for s in runs),
        )

    # Where the time goes: time inside cursor.execute (parameter binding, round trip, server) vs the rest.
    validate_s = float(np.median(sample(lambda: validate_candles(candles), repeat=5))) / 1000
    breakdown = []
    for label in ("fresh insert", "re-upsert"):
        if label == "fresh insert":
            _forget(UPSERT_SYMBOL)
        timer = SqlTimer()
        with connection.execute_wrapper(timer):
            # The re-upsert changes every row, as the "all rows updated" figure above.
            total, _ = timed(upsert if label == "fresh insert" else lambda: upsert(corrected))
        statements = ", ".join(
            f"{kind} ×{timer.calls[kind]} {timer.seconds[kind]:.2f} s" for kind in sorted(timer.seconds)
        )
        breakdown.append(
            f"| {label} | {total:.2f} s | {timer.total:.2f} s ({statements}) | {total - timer.total:.2f} s "
            f"(of which validate_candles {validate_s:.3f} s) |"
        )
    # Is it the client-side parameter binding Django uses with psycopg 3? Same code, server-side binding.
    connection.close()
    options = connection.settings_dict.setdefault("OPTIONS", {})
    options["server_side_binding"] = True
    try:
        _forget(UPSERT_SYMBOL)
        ssb_fresh, _ = timed(upsert)
        ssb_update, _ = timed(lambda: upsert(corrected))
    finally:
        connection.close()
        options.pop("server_side_binding")
    breakdown.append(
        f"| same code, `OPTIONS={{'server_side_binding': True}}` (bench-only connection option) | "
        f"fresh {ssb_fresh:.2f} s, re-upsert {ssb_update:.2f} s | | |"
    )
    report.tables["Where `candles_upsert` spends its time (100,000 rows, one run each)"] = "\n".join(
        [
            "| Run | Total | Inside cursor.execute (adapt 1,000,000 parameters, send, server work) "
            "| Python outside SQL (100,000 model instances, bulk_create field preparation and SQL) |",
            "|---|---|---|---|",
            *breakdown,
        ]
    )

    # The proposal, measured on the same rows (a separate symbol; the same table, constraints and index).
    copy_fresh, copy_update, phases = [], [], []
    for _ in range(UPSERT_REPEATS):
        _forget(COPY_SYMBOL)
        seconds, (inserted, updated, copy_s, merge_s) = timed(
            lambda: copy_upsert(symbol=COPY_SYMBOL, timeframe=Timeframe.M1, candles=candles, source="bench")
        )
        assert (inserted, updated) == (UPSERT_ROWS, 0), (inserted, updated)
        copy_fresh.append(seconds)
        phases.append((copy_s, merge_s))
        seconds, (inserted, updated, copy_s, merge_s) = timed(
            lambda: copy_upsert(symbol=COPY_SYMBOL, timeframe=Timeframe.M1, candles=candles, source="bench")
        )
        assert (inserted, updated) == (0, UPSERT_ROWS), (inserted, updated)
        copy_update.append(seconds)
    _forget(COPY_SYMBOL)
    _forget(UPSERT_SYMBOL)
    copy_s, merge_s = (float(np.median(p)) for p in zip(*phases, strict=True))
    for label, runs in (("fresh insert", copy_fresh), ("re-upsert (all rows updated)", copy_update)):
        rate = UPSERT_ROWS / float(np.median(runs))
        report.add(
            area="Market",
            name=f"Prototype (bench only): COPY → temp table → INSERT … ON CONFLICT, {label}",
            value=f"{rate:,.0f} rows/s",
            target=f"≥ {UPSERT_TARGET:,} rows/s",
            passed=rate >= UPSERT_TARGET,
            detail=f"median of {UPSERT_REPEATS}: "
            + ", ".join(f"{s:.2f} s" for s in runs)
            + (f"; COPY {copy_s:.2f} s + INSERT…SELECT {merge_s:.2f} s" if label == "fresh insert" else ""),
        )


def bench_daily_upsert(report: Report) -> None:
    """One symbol's 10-year daily backfill (what each symbol of a whole-market backfill writes): the upsert, which
    renders the ~120 months it stored (market.models.RenderedMonth), and that rendering alone."""
    from market.models import RenderedMonth
    from market.services import candles_upsert, rendered_months_refresh
    from market.timeframes import Timeframe

    candles = daily_candles("RELIANCE.NS", DAILY_UPSERT_ROWS)
    upserts, renders = [], []
    for _ in range(UPSERT_REPEATS):
        _forget(DAILY_UPSERT_SYMBOL)
        seconds, result = timed(
            lambda: candles_upsert(
                symbol=DAILY_UPSERT_SYMBOL, timeframe=Timeframe.D1, candles=candles, source="bench"
            )
        )
        assert result.inserted == DAILY_UPSERT_ROWS, result
        upserts.append(seconds)
        months = RenderedMonth.objects.filter(symbol=DAILY_UPSERT_SYMBOL)
        assert not months.filter(stale=True).exists()
        months.update(stale=True)
        seconds, rendered = timed(lambda: rendered_months_refresh(symbol=DAILY_UPSERT_SYMBOL))
        renders.append(seconds)
    _forget(DAILY_UPSERT_SYMBOL)
    rate = DAILY_UPSERT_ROWS / float(np.median(upserts))
    report.add(
        area="Market",
        name=f"`candles_upsert` {DAILY_UPSERT_ROWS:,} daily candles of one symbol, fresh insert, its months rendered",
        value=f"{rate:,.0f} rows/s",
        detail=f"median of {UPSERT_REPEATS}: "
        + ", ".join(f"{s:.3f} s" for s in upserts)
        + f"; rendering the {rendered} months alone: "
        + ", ".join(f"{s * 1000:.0f} ms" for s in renders),
    )


def bench_endpoints(report: Report) -> None:
    from django.core.cache import cache

    from market.caching import quote_cache_delete

    stored = store_daily_candles(SYMBOL, bars=HISTORY_BARS)
    client = jwt_client()
    bare = SYMBOL.removesuffix(".NS")
    history_url = f"/api/market/historical/{bare}?timeframe=1D&limit={HISTORY_BARS}"
    quote_url = f"/api/market/quote/{bare}"

    def get(url: str):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
        return response

    body = get(history_url).json()
    assert body["count"] == HISTORY_BARS, body["count"]
    sample(lambda: get(history_url), repeat=5, before=cache.clear)  # warm-up: imports, connections
    miss = sample(lambda: get(history_url), repeat=REQUESTS, before=cache.clear)
    get(history_url)
    hit = sample(lambda: get(history_url), repeat=REQUESTS)
    history_breakdown(report, client=client, url=history_url, miss=miss, hit=hit)
    for label, times in (("cache miss (cache cleared before each)", miss), ("cache hit", hit)):
        p50 = pct(times, 50)
        report.add(
            area="Market",
            name=f"GET /api/market/historical, 2,500 daily candles, {label}",
            value=f"p50 {p50:.2f} ms",
            target=f"p50 ≤ {HISTORY_TARGET_MS:g} ms",
            passed=p50 <= HISTORY_TARGET_MS,
            detail=f"{spread(times)}; {stored:,} candles stored, JWT auth",
        )

    first = get(quote_url).json()
    assert first["source"] == "synthetic", first
    sample(lambda: get(quote_url), repeat=5, before=lambda: quote_cache_delete(SYMBOL))
    quote_miss = sample(lambda: get(quote_url), repeat=REQUESTS, before=lambda: quote_cache_delete(SYMBOL))
    assert get(quote_url).json()["cached"] is True
    quote_hit = sample(lambda: get(quote_url), repeat=REQUESTS)
    for label, times in (
        ("miss (quote key deleted before each: synthetic provider computes it)", quote_miss),
        ("hit", quote_hit),
    ):
        report.add(
            area="Market",
            name=f"GET /api/market/quote, cache {label}",
            value=f"p50 {pct(times, 50):.2f} ms",
            detail=spread(times),
        )


def history_breakdown(report: Report, *, client, url: str, miss: list[float], hit: list[float]) -> None:
    """What a 2,500-candle historical request is made of: each part timed alone, medians of 50."""
    import psycopg
    from django.core.cache import cache
    from django.db import connection
    from django.db.models import CharField, F, Func, Value
    from rest_framework.renderers import JSONRenderer

    from market.models import MarketData
    from market.selectors import candles_history
    from market.timeframes import Timeframe

    def selector():
        return candles_history(symbol=SYMBOL, timeframe=Timeframe.D1, limit=HISTORY_BARS)

    rows = (
        MarketData.objects.filter(symbol=SYMBOL, timeframe=Timeframe.D1.value)
        .order_by("-timestamp")
        .values_list("timestamp", "open_price", "high_price", "low_price", "close_price", "volume", "source")[
            :HISTORY_BARS
        ]
    )
    sql, params = rows.query.get_compiler(using="default").as_sql()
    # The timestamp as PostgreSQL-formatted text (the session time zone is UTC), equal to isoformat() of the value.
    iso = Func(
        F("timestamp"), Value('YYYY-MM-DD"T"HH24:MI:SS"+00:00"'), function="to_char", output_field=CharField()
    )
    iso_rows = (
        MarketData.objects.filter(symbol=SYMBOL, timeframe=Timeframe.D1.value)
        .order_by("-timestamp")
        .annotate(iso=iso)
        .values_list("iso", "open_price", "high_price", "low_price", "close_price", "volume", "source")[
            :HISTORY_BARS
        ]
    )
    assert [r[0] for r in iso_rows] == [r[0].isoformat() for r in rows], "to_char differs from isoformat()"
    connection.ensure_connection()

    def binary_fetch():
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, params, binary=True)
            return cursor.fetchall()

    body = selector()  # the rendered JSON the endpoint sends (and caches)
    payload = json.loads(body)
    cache.clear()
    parts = [
        ("whole request, cache miss (above)", pct(miss, 50)),
        ("`candles_history()` selector alone, cache miss", sample(selector, repeat=50, before=cache.clear)),
        (
            "its ORM read: `values_list` of 2,500 rows (text protocol, Django's timestamptz loader)",
            sample(lambda: list(rows.all()), repeat=50),
        ),
        ("the same SELECT on a binary-protocol psycopg cursor (bench-only)", sample(binary_fetch, repeat=50)),
        (
            "the same ORM read with the timestamp formatted by PostgreSQL, `to_char(...)` (bench-only)",
            sample(lambda: list(iso_rows.all()), repeat=50),
        ),
        (
            "DRF `JSONRenderer` on the 2,500-candle payload (what the view did before it cached rendered bytes)",
            sample(lambda: JSONRenderer().render(payload), repeat=50),
        ),
        ("whole request, cache hit (above)", pct(hit, 50)),
        (
            "`cache.get` of the cached response body (Redis)",
            sample(
                lambda: cache.get("bench:payload"),
                repeat=50,
                before=lambda: cache.set("bench:payload", body),
            ),
        ),
    ]
    assert len(binary_fetch()) == HISTORY_BARS
    cache.delete("bench:payload")
    report.tables["What a 2,500-candle historical request is made of (median ms; each part timed alone)"] = (
        "\n".join(
            ["| Part | ms |", "|---|---|"]
            + [
                f"| {name} | {value if isinstance(value, float) else pct(value, 50):.2f} |"
                for name, value in parts
            ]
        )
    )


def main() -> None:
    args = cli(__doc__.splitlines()[0])
    setup()
    report = Report()
    bench_upsert(report)
    bench_daily_upsert(report)
    bench_endpoints(report)
    finish(report, args.json)


if __name__ == "__main__":
    main()
