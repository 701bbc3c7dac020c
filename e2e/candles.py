"""What the database holds, against what the synthetic provider says a symbol's candles are."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime

import psycopg

from e2e.stack import DB_NAME, Stack, wait_for
from market.calendar import ExchangeCalendar
from market.providers.synthetic import SyntheticProvider
from market.timeframes import Timeframe

Row = tuple[datetime, float, float, float, float, int]


def stored(stack: Stack, symbol: str, timeframe: str) -> list[Row]:
    return stack.query(
        "SELECT timestamp, open_price, high_price, low_price, close_price, volume FROM market_marketdata"
        " WHERE symbol = %s AND timeframe = %s ORDER BY timestamp",
        [symbol, timeframe],
    )


def synthetic(stack: Stack, symbol: str, *, now: datetime) -> SyntheticProvider:
    """The provider the app runs (same seed, same holidays from its database), with the clock at `now`."""
    holidays = dict(stack.query("SELECT date, description FROM market_marketholiday WHERE exchange = 'NSE'"))
    return SyntheticProvider(symbols={symbol}, calendar=ExchangeCalendar(holidays), clock=lambda: now)


def expected(
    stack: Stack, symbol: str, timeframe: str, *, start: datetime, end: datetime, now: datetime
) -> list[Row]:
    frame = synthetic(stack, symbol, now=now).fetch_candles(
        symbol, Timeframe(timeframe), start=start, end=end
    )
    return [
        (ts.to_pydatetime(), o, h, lo, c, int(v))
        for ts, o, h, lo, c, v in frame[["open", "high", "low", "close", "volume"]].itertuples()
    ]


@contextlib.contextmanager
def writes_blocked(stack: Stack) -> Iterator[None]:
    """Hold a SHARE lock on the candle table: readers go on, the next INSERT waits until the block ends."""
    with psycopg.connect(stack.database_url) as conn:
        conn.execute("LOCK TABLE market_marketdata IN SHARE MODE")
        try:
            yield
        finally:
            conn.rollback()


def blocked_inserts(stack: Stack) -> set[int]:
    """Backends waiting for a lock in the middle of writing candles (whatever SQL the upsert uses)."""
    rows = stack.query(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' AND query ILIKE %s",
        [DB_NAME, "%insert into%market_marketdata%"],
    )
    return {pid for (pid,) in rows}


def wait_blocked_insert(stack: Stack, *, besides: set[int] = frozenset()) -> int:
    pids = wait_for(
        lambda: blocked_inserts(stack) - besides, timeout=60, what="a sync to block on its candle INSERT"
    )
    return min(pids)


def backend_gone(stack: Stack, pid: int) -> bool:
    return not stack.query("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
