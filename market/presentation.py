"""How times and numbers read in API responses: exchange-local ISO 8601 times, trading days for daily bars,
prices at the instrument's precision, percentages at two decimals, ratios at four significant digits.

Pure (no ORM): serializers and selectors pass the exchange's time zone and the instrument's tick. Storage and
computation stay in UTC and full float precision; only what a person reads is rounded, at the edge.
"""

from __future__ import annotations

import math
from datetime import date, datetime, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal

# Bars of these timeframes stand for a trading day (or a week of them): a response also carries its `date`.
DAY_TIMEFRAMES = frozenset({"1D", "1W", "1M"})


def local_time(value: datetime | None, tz: tzinfo) -> str | None:
    """ISO 8601 in the exchange's clock with its offset: 2026-11-27T09:15:00+05:30 (seconds precision)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime: times are stored and passed around timezone-aware (UTC)")
    return value.astimezone(tz).replace(microsecond=0).isoformat()


def trading_day(value: datetime, tz: tzinfo) -> str:
    """The exchange-local calendar day a bar opening at `value` belongs to: 2026-11-27."""
    return value.astimezone(tz).date().isoformat()


def local_date(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def price(value: float | None, *, tick: float | None = None, decimals: int = 2) -> float | None:
    """A price at the instrument's precision: to the tick when staff set one, else to `decimals` places."""
    if value is None or not math.isfinite(value):
        return None
    if tick:
        ticks = Decimal(repr(value)) / Decimal(repr(tick))
        value = float(ticks.quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * Decimal(repr(tick)))
    return round(value, decimals)


def pct(value: float | None) -> float | None:
    """A change or percentage, two decimals."""
    if value is None or not math.isfinite(value):
        return None
    return round(value, 2)


def ratio(value: float | None, digits: int = 4) -> float | None:
    """A ratio, strength, score or return fraction: `digits` significant digits (0.06931 -> 0.06931)."""
    if value is None or not math.isfinite(value):
        return None
    if value == 0:
        return 0.0
    return float(f"{value:.{digits}g}")
