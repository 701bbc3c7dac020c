"""Prototype (bench only): a 2,500-candle historical read from stored, already rendered monthly chunks, against
today's read and rendering (issue 12's cache miss; bench/README.md, "Ninth look").

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/td_perf_bench \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/6 .venv/bin/python -m bench.proto_rendered_chunks

Run alone, not part of bench/run.sh. It renders the symbol's stored daily candles as the API does, cuts the JSON
into one object per bar, stores them in a temporary table as one row per month of the exchange's clock (the
concatenated objects as `bytea` kept uncompressed, each object's end offset, each bar's time), then times, for the
latest 2,500 candles: today's read (`_history_columns`), today's rendering (`_candles_json`), and the prototype's
read of the chunks plus the cut of the oldest one and the join. The prototype's body must equal today's byte for
byte (checked). Nothing of the product uses it: how such chunks would be kept true (every write, concurrent
writers, corporate actions, ticks, time zones) is in bench/README.md.
"""

from __future__ import annotations

import numpy as np

from bench.harness import Report, cli, finish, sample, setup, spread, store_daily_candles

SYMBOL = "RELIANCE.NS"
BARS = 2500
REPEAT = 300

_CHUNKS_SQL = """
SELECT times, ends, body FROM bench_rendered_chunk
WHERE symbol = %(symbol)s AND timeframe = %(timeframe)s
ORDER BY month DESC LIMIT %(months)s
"""


def store_chunks(symbol: str, timeframe, tz) -> int:
    """The symbol's stored bars rendered as today, one row per month; the number of months."""
    from django.db import connection

    from market.presentation import local_seconds
    from market.selectors import _candles_json, _history_columns

    bars = _history_columns(symbol=symbol, timeframe=timeframe, start=None, end=None, limit=10**6)
    _, body, _ = _candles_json(symbol=symbol, timeframe=timeframe, bars=bars)
    objects = [part + b"}" for part in body[1:-2].split(b"},")]  # flat objects: no '},' inside one
    assert len(objects) == len(bars) and b"[" + b",".join(objects) + b"]" == body
    months = local_seconds(bars.time, tz).astype("datetime64[s]").astype("datetime64[M]")
    rows = []
    for month in np.unique(months):
        picked = np.flatnonzero(months == month).tolist()
        ends = np.cumsum([len(objects[i]) + 1 for i in picked]) - 1  # each object's end, before its comma
        rows.append(
            (symbol, timeframe.value, f"{month}-01", bars.time[picked].tolist(), ends.tolist(),
             b",".join(objects[i] for i in picked))
        )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE bench_rendered_chunk (symbol varchar(20), timeframe varchar(3), month date, "
            "times int8[], ends int4[], body bytea, PRIMARY KEY (symbol, timeframe, month))"
        )
        cursor.execute("ALTER TABLE bench_rendered_chunk ALTER COLUMN body SET STORAGE EXTERNAL")
        cursor.executemany("INSERT INTO bench_rendered_chunk VALUES (%s, %s, %s, %s, %s, %s)", rows)
        cursor.execute("ANALYZE bench_rendered_chunk")
    return len(rows)


def chunks_body(symbol: str, timeframe, limit: int) -> bytes:
    """The latest `limit` rendered candles from the chunks: whole months, newest first, until `limit` bars, the
    oldest one cut at an object's end."""
    from market.selectors import _binary_cursor

    months = limit // 15 + 2  # a month has at least 15 sessions on any exchange here
    with _binary_cursor() as cursor:  # bytea as its bytes, not hex text
        cursor.execute(_CHUNKS_SQL, {"symbol": symbol, "timeframe": timeframe.value, "months": months})
        chunks = cursor.fetchall()
    parts, count = [], 0
    for _, ends, body in chunks:
        body = bytes(body)
        wanted = limit - count
        if len(ends) > wanted:  # keep this month's last `wanted` objects
            parts.append(body[ends[len(ends) - wanted - 1] + 1 :])
            count = limit
            break
        parts.append(body)
        count += len(ends)
    parts.reverse()
    return b"[" + b",".join(parts) + b"]"


def main() -> None:
    args = cli(__doc__.splitlines()[0])
    setup()
    from market.selectors import _candles_json, _history_columns
    from market.sources import time_zone_for_symbol
    from market.timeframes import Timeframe

    stored = store_daily_candles(SYMBOL, bars=BARS)
    daily = Timeframe.D1
    months = store_chunks(SYMBOL, daily, time_zone_for_symbol(SYMBOL))

    def read():
        return _history_columns(symbol=SYMBOL, timeframe=daily, start=None, end=None, limit=BARS)

    bars = read()
    _, expected, _ = _candles_json(symbol=SYMBOL, timeframe=daily, bars=bars)
    assert chunks_body(SYMBOL, daily, BARS) == expected, "the chunks' body differs from today's"
    figures = {
        "today's read (`_history_columns`, binary arrays)": sample(read, repeat=REPEAT),
        "today's rendering (`_candles_json`)": sample(
            lambda: _candles_json(symbol=SYMBOL, timeframe=daily, bars=bars), repeat=REPEAT
        ),
        "prototype: read the monthly chunks, cut, join": sample(
            lambda: chunks_body(SYMBOL, daily, BARS), repeat=REPEAT
        ),
    }
    report = Report()
    for name, times in figures.items():
        report.add(
            area="Prototype",
            name=f"latest {BARS:,} daily candles: {name}",
            value=f"p50 {np.percentile(times, 50):.2f} ms",
            detail=f"{spread(times)}, min {min(times):.2f} ms; {stored:,} stored, {months} months",
        )
    finish(report, args.json)


if __name__ == "__main__":
    main()
