"""How times and numbers read in API responses: exchange-local ISO 8601 times, trading days for daily bars,
prices at the instrument's precision, percentages at two decimals, ratios at four significant digits.

Pure (no ORM): serializers and selectors pass the exchange's time zone and the instrument's tick. Storage and
computation stay in UTC and full float precision; only what a person reads is rounded, at the edge.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

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


# Response keys by what they hold. Prices (and differences of prices) read at the instrument's precision,
# percentages at 2 decimals, ratios, scores, fractions and returns at 4 significant digits.
PRICE_KEYS = frozenset(
    {
        "open", "high", "low", "close", "price", "previous_close", "change", "predicted_price", "lower_bound",
        "upper_bound", "base_price", "realized_price", "error", "entry_price", "exit_price", "price_target",
        "stop_loss", "support_level", "resistance_level", "mae", "naive_mae", "rmse",
    }
)  # fmt: skip
PCT_KEYS = frozenset({"change_percent", "change_pct", "mape"})
RATIO_KEYS = frozenset(
    {
        "strength", "score", "weight", "contribution", "confidence_score", "total_return", "buy_and_hold_return",
        "max_drawdown", "sharpe", "exposure", "win_rate", "return", "mae_vs_naive", "hit_rate",
        "interval_coverage", "coverage_80", "coverage_80_calm", "coverage_80_volatile", "directional_accuracy",
        "equity", "dm_stat", "dm_p_value",
    }
)  # fmt: skip
_UTC_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:\+00:00|Z)$")


def present(
    data: Any, *, zone_of: Callable[[str], tzinfo], tz: tzinfo | None = None, timeframe: str | None = None
):
    """A response payload as people read it: every UTC time in the exchange's clock of the `symbol` it belongs
    to (the nearest enclosing object with a `symbol`), daily and weekly bars with their trading `date`, and
    numbers rounded by what they hold. Pure: `zone_of(symbol)` says where a symbol trades."""
    if isinstance(data, dict):
        symbol = data.get("symbol")
        if isinstance(symbol, str):
            tz = zone_of(symbol)
        if isinstance(data.get("timeframe"), str):
            timeframe = data["timeframe"]
        out = {}
        for key, value in data.items():
            out[key] = _present_value(key, value, zone_of=zone_of, tz=tz, timeframe=timeframe)
        stamp = data.get("timestamp")
        if tz is not None and timeframe in DAY_TIMEFRAMES and stamp is not None and "date" not in data:
            when = _as_datetime(stamp)
            if when is not None:
                out["date"] = trading_day(when, tz)
        return out
    if isinstance(data, list | tuple):
        return [present(item, zone_of=zone_of, tz=tz, timeframe=timeframe) for item in data]
    return data


def _present_value(key, value, *, zone_of, tz, timeframe):
    if isinstance(value, dict | list | tuple):
        return present(value, zone_of=zone_of, tz=tz, timeframe=timeframe)
    if tz is not None and (isinstance(value, datetime) or (isinstance(value, str) and _UTC_ISO.match(value))):
        return local_time(_as_datetime(value), tz)
    if isinstance(value, float):
        if key in PRICE_KEYS:
            return price(value)
        if key in PCT_KEYS or (isinstance(key, str) and key.endswith("_pct")):
            return pct(value)
        if key in RATIO_KEYS:
            return ratio(value)
    return value


def _as_datetime(value) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
