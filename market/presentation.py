"""How times and numbers read in API responses: exchange-local ISO 8601 times, trading days for daily bars,
prices at the instrument's precision, percentages at two decimals, ratios at four significant digits.

Pure (no ORM): serializers and selectors pass the exchange's time zone and the instrument's tick. Storage and
computation stay in UTC and full float precision; only what a person reads is rounded, at the edge.

Traded prices (a bar's OHLC, a quote's price, open, high, low and previous close, an entry at a bar's price, and
support/resistance levels drawn from bar highs and lows) read at the instrument's tick; every other price (a
model's forecast and its interval, a stop loss or target computed from ATR, an error) at two decimals.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

if TYPE_CHECKING:
    from market.columns import BarColumns

# Bars of these timeframes stand for a trading day (or a week of them): a response also carries its `date`.
DAY_TIMEFRAMES = frozenset({"1D", "1W", "1M"})

# Price step of equities by exchange when staff set no `Instrument.tick_size`. The one figure we have a source
# for is issue #10's "tick 0.05 for NSE equities where it applies"; BSE, which shares NSE's calendar here, gets
# the same default. Nothing else is assumed: indices and every other exchange read at two decimals, and staff
# set an instrument's own tick (Instrument.tick_size) where it differs.
EQUITY_TICKS: dict[str, Decimal] = {"NSE": Decimal("0.05"), "BSE": Decimal("0.05")}
PRICE_DECIMALS = 2

Tick = Decimal | float | None


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


def default_tick(exchange: str, kind: str) -> Decimal | None:
    """The price step of an instrument for which staff set none: EQUITY_TICKS for equities, none otherwise."""
    return EQUITY_TICKS.get(exchange) if kind == "equity" else None


def _price_step(tick: Tick) -> tuple[Decimal, int | None]:
    """(the price step, its whole number of steps per unit or None): 0.05 -> (0.05, 20), 0.03 -> (0.03, None);
    without a tick two decimals, (0.01, 100)."""
    step = Decimal(str(tick)) if tick else Decimal(1).scaleb(-PRICE_DECIMALS)
    if step <= 0:
        raise ValueError(f"A tick must be positive, got {tick!r}")
    per_unit = 1 / step
    return step, int(per_unit) if per_unit == per_unit.to_integral_value() else None


@functools.lru_cache(maxsize=64)
def price_rounder(tick: Tick = None) -> Callable[[float], float]:
    """A function rounding a finite price to the nearest multiple of `tick` (ties to even), shown with the
    tick's decimals (at least two); without a tick, to two decimals (a step of 0.01). Built once per tick."""
    step, k = _price_step(tick)
    if k is not None:
        # 0.05 = 1/20: round(v * 20) / 20 is the float nearest the tick's exact multiple, already at its decimals
        # (and about twice as fast as round(v, 2)).
        return lambda value: round(value * k) / k
    decimals = max(PRICE_DECIMALS, -step.normalize().as_tuple().exponent)
    width = float(step)
    return lambda value: round(round(value / width) * width, decimals)


@functools.lru_cache(maxsize=64)
def price_array_rounder(tick: Tick = None) -> Callable[[np.ndarray], list[float]]:
    """price_rounder over an array, as a list: the same floats. Where the tick's inverse is a whole number k,
    Python's round(v * k) / k and NumPy's rint(v * k) / k agree to the bit (both round the same product half to
    even, and divide the same exactly representable integer by k); other ticks keep the per-value rounder
    (NumPy's decimal rounding differs from Python's in the last digit)."""
    _, k = _price_step(tick)
    if k is not None:
        return lambda values: (np.rint(values * k) / k).tolist()
    one = price_rounder(tick)
    return lambda values: [one(value) for value in values.tolist()]


def price(value: float | None, *, tick: Tick = None) -> float | None:
    """A price at the instrument's precision: to its tick when it has one, else to two decimals."""
    if value is None or not math.isfinite(value):
        return None
    return price_rounder(tick)(value)


def local_times(seconds: np.ndarray, tz: tzinfo) -> np.ndarray:
    """local_time of many UTC epoch seconds at once: ISO 8601 strings in the exchange's clock with its offset
    (2026-11-27T09:15:00+05:30), as a NumPy string array."""
    seconds = np.asarray(seconds, dtype=np.int64)
    if not seconds.size:
        return np.array([], dtype="<U25")
    offsets = utc_offsets(seconds, tz)
    stamps = np.datetime_as_string((seconds + offsets).astype("datetime64[s]"))
    known = np.unique(offsets)
    suffixes = np.array([_offset_text(int(offset)) for offset in known])
    if len(known) == 1:
        return np.char.add(stamps, suffixes[0])
    return np.char.add(stamps, suffixes[np.searchsorted(known, offsets)])


def local_seconds(seconds: np.ndarray, tz: tzinfo) -> np.ndarray:
    """The exchange's wall clock at UTC epoch seconds, as epoch seconds read as if it were UTC (int64): what
    NumPy's datetime64 turns into local dates and times."""
    seconds = np.asarray(seconds, dtype=np.int64)
    return seconds + utc_offsets(seconds, tz)


def utc_offsets(seconds: np.ndarray, tz: tzinfo) -> np.ndarray:
    """The UTC offset of `tz` at each of the UTC epoch seconds, in seconds east of UTC (int64): what
    datetime.fromtimestamp(s, tz).utcoffset() says, read from a per-process table of the zone's changes by
    UTC year instead of one datetime per element (and without pandas)."""
    seconds = np.asarray(seconds, dtype=np.int64)
    if isinstance(tz, timezone):
        return np.full(seconds.shape, tz.utcoffset(None) // _SECOND, dtype=np.int64)
    if not seconds.size:
        return np.empty(seconds.shape, dtype=np.int64)
    years = np.unique(seconds.astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64)) + 1970
    tables = [_year_offsets(tz, year) for year in years.tolist()]
    starts = np.concatenate([starts for starts, _ in tables])
    offsets = np.concatenate([offsets for _, offsets in tables])
    return offsets[np.searchsorted(starts, seconds, side="right") - 1]


_SECOND = timedelta(seconds=1)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# A zone is probed every 6 hours and each change is bisected to its second. That finds every change as long as
# no zone changes its offset twice within one step (a change and its reversal inside one would go unseen). The
# closest two offset changes of any zone are 4 days apart in tzdata 2025b (Africa/Freetown, September 1939) and
# 7 days in 2026f, DST changes months apart: 6 hours leaves a wide margin, for about 1,500 probes (2-4 ms) per
# zone and year, once per process.
_PROBE_STEP = 6 * 3600


@functools.lru_cache(maxsize=2048)
def _year_offsets(tz: tzinfo, year: int) -> tuple[np.ndarray, np.ndarray]:
    """(starts, offsets) of `tz` in the UTC calendar year `year`: offsets[i] seconds east of UTC apply from the
    epoch second starts[i] on; starts[0] is the year's first second."""
    first = (date(year, 1, 1).toordinal() - _EPOCH_ORDINAL) * 86400
    end = (date(year + 1, 1, 1).toordinal() - _EPOCH_ORDINAL) * 86400
    probes = [*range(first, end, _PROBE_STEP), end - 1]
    found = [_offset_at(probe, tz) for probe in probes]
    starts, offsets = [first], [found[0]]
    for (lo, before), (hi, after) in itertools.pairwise(zip(probes, found, strict=True)):
        if before == after:
            continue
        while hi - lo > 1:  # offset(lo) == before != offset(hi): the change is at the first second with after
            mid = (lo + hi) // 2
            if _offset_at(mid, tz) == before:
                lo = mid
            else:
                hi = mid
        starts.append(hi)
        offsets.append(after)
    table = np.array(starts, dtype=np.int64), np.array(offsets, dtype=np.int64)
    for column in table:
        column.flags.writeable = False  # shared by every caller through the cache
    return table


def _offset_at(second: int, tz: tzinfo) -> int:
    return datetime.fromtimestamp(second, tz).utcoffset() // _SECOND


def _offset_text(seconds: int) -> str:
    """A UTC offset as API times carry it (orjson's rendering of an aware datetime): +05:30, -04:00, +00:00, in
    whole minutes, floored (the zones' pre-1972 offsets with seconds, +05:21:10 in Kolkata until 1906, read
    +05:21; RFC 3339 has no seconds in an offset)."""
    minutes = seconds // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def candles_json(bars: BarColumns, *, tz: tzinfo, tick: Tick, by_day: bool, table: bool = False) -> bytes:
    """The JSON array of candle objects a historical response carries, in time order: each bar's open time in
    the exchange's clock, its trading `date` when `by_day`, prices at the tick. With `table`, one array per
    field instead and times as UNIX seconds (what charting libraries take). Column at a time, not bar by bar
    (bench/README.md, "Cache miss, vectorised")."""
    to_tick = price_array_rounder(tick)
    opens, highs, lows, closes = (to_tick(values) for values in (bars.open, bars.high, bars.low, bars.close))
    volumes, finals = bars.volume.tolist(), bars.final.tolist()
    stamps = local_times(bars.time, tz) if len(bars) else np.array([], dtype="<U25")
    if table:
        fields = {"time": bars.time.tolist(), "open": opens, "high": highs, "low": lows, "close": closes}
        fields.update(volume=volumes, final=finals)
        if by_day:
            fields["date"] = stamps.astype("<U10").tolist()
        return orjson.dumps(fields)
    rows = zip(stamps.tolist(), opens, highs, lows, closes, volumes, finals, strict=True)
    if by_day:
        return orjson.dumps(
            [
                {
                    "timestamp": ts,
                    "open": o,
                    "high": h,
                    "low": lo,
                    "close": c,
                    "volume": v,
                    "final": f,
                    "date": ts[:10],
                }
                for ts, o, h, lo, c, v, f in rows
            ]
        )
    return orjson.dumps(
        [
            {"timestamp": ts, "open": o, "high": h, "low": lo, "close": c, "volume": v, "final": f}
            for ts, o, h, lo, c, v, f in rows
        ]
    )


def candle_objects(bars: BarColumns, *, tz: tzinfo, tick: Tick, by_day: bool) -> tuple[bytes, np.ndarray]:
    """The candles' JSON objects as candles_json renders them, comma-separated without the enclosing brackets,
    and where each object ends (int32 offsets: object i is body[ends[i-1] + 1 : ends[i]], the first from 0)."""
    body = candles_json(bars, tz=tz, tick=tick, by_day=by_day)[1:-1]
    if not body:
        return b"", np.empty(0, dtype=np.int32)
    # The objects are flat and none of their values (numbers, booleans, ISO times) holds a brace.
    lengths = np.array([len(part) + 2 for part in body.split(b"},{")], dtype=np.int64)
    lengths[0] -= 1  # the first object's opening brace and the last one's closing brace were not split off
    lengths[-1] -= 1
    ends = np.cumsum(lengths) + np.arange(len(lengths))  # plus the commas before each
    return body, ends.astype(np.int32)


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


# Response keys by what they hold. Traded prices read at the instrument's tick, other prices (and differences of
# prices) at 2 decimals, percentages at 2 decimals, ratios, scores, fractions and returns at 4 significant digits.
TRADED_PRICE_KEYS = frozenset(
    {
        "open", "high", "low", "close", "price", "previous_close", "entry_price", "base_price", "realized_price",
        "support_level", "resistance_level",
    }
)  # fmt: skip
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
    data: Any,
    *,
    zone_of: Callable[[str], tzinfo],
    tick_of: Callable[[str], Tick] | None = None,
    tz: tzinfo | None = None,
    timeframe: str | None = None,
    tick: Tick = None,
):
    """A response payload as people read it: every UTC time in the exchange's clock of the `symbol` it belongs
    to (the nearest enclosing object with a `symbol`), daily and weekly bars with their trading `date`, traded
    prices at that symbol's tick and other numbers rounded by what they hold. Pure: `zone_of(symbol)` says where
    a symbol trades, `tick_of(symbol)` its price step (None: two decimals)."""
    if isinstance(data, dict):
        symbol = data.get("symbol")
        if isinstance(symbol, str):
            tz = zone_of(symbol)
            tick = tick_of(symbol) if tick_of is not None else None
        if isinstance(data.get("timeframe"), str):
            timeframe = data["timeframe"]
        context = {"zone_of": zone_of, "tick_of": tick_of, "tz": tz, "timeframe": timeframe, "tick": tick}
        out = {key: _present_value(key, value, context) for key, value in data.items()}
        stamp = data.get("timestamp")
        if tz is not None and timeframe in DAY_TIMEFRAMES and stamp is not None and "date" not in data:
            when = _as_datetime(stamp)
            if when is not None:
                out["date"] = trading_day(when, tz)
        return out
    if isinstance(data, list | tuple):
        return [
            present(item, zone_of=zone_of, tick_of=tick_of, tz=tz, timeframe=timeframe, tick=tick)
            for item in data
        ]
    return data


def _present_value(key, value, context):
    if isinstance(value, dict | list | tuple):
        return present(value, **context)
    tz = context["tz"]
    if tz is not None and (isinstance(value, datetime) or (isinstance(value, str) and _UTC_ISO.match(value))):
        return local_time(_as_datetime(value), tz)
    if isinstance(value, float):
        if key in TRADED_PRICE_KEYS:
            return price(value, tick=context["tick"])
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
