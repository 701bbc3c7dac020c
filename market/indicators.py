"""Technical-indicator series for charts, computed with TA-Lib over candle columns. Pure (no ORM).

Names are `kind[:param…]`: sma:50, ema:20, rsi:14, macd:12:26:9, bbands:20:2, atr:14, vwap. Each series has one
value per candle, `None` where the indicator has not warmed up yet; multi-line indicators (macd, bbands) give an
object per bar. VWAP restarts each session for intraday bars and is anchored at the first bar otherwise. A
window's values are computed with the bars before it that they depend on (warmup_bars), so the same bar has the
same value whatever window it is read in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

# kind -> (number of parameters, defaults, bounds per parameter)
_KINDS: dict[str, tuple[tuple[float, ...], tuple[tuple[float, float], ...]]] = {
    "sma": ((20,), ((2, 500),)),
    "ema": ((20,), ((2, 500),)),
    "rsi": ((14,), ((2, 200),)),
    "atr": ((14,), ((1, 200),)),
    "macd": ((12, 26, 9), ((2, 200), (2, 400), (1, 200))),
    "bbands": ((20, 2), ((2, 500), (0.1, 10))),
    "vwap": ((), ()),
}
SUPPORTED = "sma:N, ema:N, rsi:N, atr:N, macd:FAST:SLOW:SIGNAL, bbands:N:K, vwap"
MAX_INDICATORS = 10


class InvalidIndicator(ValueError):
    """A name or parameter the endpoint cannot compute; the message lists what it can."""


@dataclass(frozen=True)
class Indicator:
    name: str  # as asked, normalised: "macd:12:26:9"
    kind: str
    params: tuple[float, ...]


def parse_indicators(text: str) -> list[Indicator]:
    """`sma:50,ema:20,…` → indicators, or InvalidIndicator naming the bad part and the supported forms."""
    parts = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not parts:
        raise InvalidIndicator(f"Name at least one indicator: {SUPPORTED}")
    if len(parts) > MAX_INDICATORS:
        raise InvalidIndicator(f"At most {MAX_INDICATORS} indicators a request")
    out: list[Indicator] = []
    for part in parts:
        kind, *raw = part.split(":")
        if kind not in _KINDS:
            raise InvalidIndicator(f"Unknown indicator {kind!r}; supported: {SUPPORTED}")
        defaults, bounds = _KINDS[kind]
        if len(raw) > len(defaults):
            raise InvalidIndicator(f"{part!r} has too many parameters; supported: {SUPPORTED}")
        try:
            values = [float(value) for value in raw]
        except ValueError:
            raise InvalidIndicator(f"{part!r}: parameters are numbers; supported: {SUPPORTED}") from None
        params = tuple(values + list(defaults[len(values) :]))
        for value, (low, high), position in zip(params, bounds, range(len(params)), strict=True):
            integral = not (kind == "bbands" and position == 1)
            if not low <= value <= high or (integral and value != int(value)):
                kind_of = "a whole number" if integral else "a number"
                raise InvalidIndicator(
                    f"{part!r}: parameter {position + 1} must be {kind_of} from {low:g} to {high:g}"
                )
        if kind == "macd" and params[0] >= params[1]:
            raise InvalidIndicator(f"{part!r}: the fast period must be shorter than the slow one")
        name = ":".join([kind, *(f"{p:g}" for p in params)])
        out.append(Indicator(name=name, kind=kind, params=params))
    return out


# Bars a recursive indicator needs before its value no longer depends on where the series began: its memory
# decays as (1 - a)^n, below 1e-4 of the start after about 9.2 / a bars (a = 2 / (p + 1) for an EMA, 1 / p for
# Wilder's smoothing in RSI and ATR).
MAX_WARMUP_BARS = 2000


def warmup_bars(indicators: list[Indicator], *, intraday_session_bars: int | None = None) -> int:
    """How many bars before a window its indicators read, so that each value is the one a longer history gives
    (to 1e-4 for the recursive ones): SMA and Bollinger bands their period less one, EMA and MACD ~5 periods,
    RSI and ATR ~10; intraday VWAP its session's earlier bars (`intraday_session_bars`), a daily one none (it is
    anchored at the window's first bar)."""
    needed = 0
    for ind in indicators:
        p = [int(v) for v in ind.params]
        if ind.kind in ("sma", "bbands"):
            needed = max(needed, p[0] - 1)
        elif ind.kind == "ema":
            needed = max(needed, 5 * (p[0] + 1))
        elif ind.kind in ("rsi", "atr"):
            needed = max(needed, 10 * p[0])
        elif ind.kind == "macd":
            needed = max(needed, 5 * (p[1] + 1) + 5 * (p[2] + 1))
        elif ind.kind == "vwap" and intraday_session_bars:
            needed = max(needed, intraday_session_bars)
    return min(needed, MAX_WARMUP_BARS)


def _values(array: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), 4) for v in array]


def _session_cumsum(values: np.ndarray, sessions: np.ndarray) -> np.ndarray:
    """Running sum of `values` that restarts where `sessions` changes from one bar to the next (bars in time
    order, so each session's bars are contiguous). As pandas' cumsum: a missing value (NaN) stays missing and
    is skipped by the sums after it."""
    if len(sessions) != len(values):
        raise ValueError(f"{len(sessions)} session days for {len(values)} candles")
    if not len(values):
        return values.copy()
    starts = np.flatnonzero(np.r_[True, sessions[1:] != sessions[:-1]])
    sums = np.concatenate([np.nancumsum(part) for part in np.split(values, starts[1:])])
    sums[np.isnan(values)] = np.nan
    return sums


def compute_indicators(candles: Mapping[str, Any], indicators: list[Indicator], *, session_days=None) -> dict:
    """name → list (one value per candle) or dict of lists for multi-line indicators. `candles`: columns open,
    high, low, close, volume in time order (NumPy arrays, lists or a frame's columns). `session_days`: for
    intraday bars, the exchange-local day of each bar (VWAP restarts each session)."""
    import talib

    close = np.asarray(candles["close"], dtype="float64")
    high = np.asarray(candles["high"], dtype="float64")
    low = np.asarray(candles["low"], dtype="float64")
    volume = np.asarray(candles["volume"], dtype="float64")
    series: dict = {}
    for ind in indicators:
        p = [int(v) if v == int(v) else v for v in ind.params]
        if ind.kind == "sma":
            series[ind.name] = _values(talib.SMA(close, timeperiod=p[0]))
        elif ind.kind == "ema":
            series[ind.name] = _values(talib.EMA(close, timeperiod=p[0]))
        elif ind.kind == "rsi":
            series[ind.name] = _values(talib.RSI(close, timeperiod=p[0]))
        elif ind.kind == "atr":
            series[ind.name] = _values(talib.ATR(high, low, close, timeperiod=p[0]))
        elif ind.kind == "macd":
            macd, signal, hist = talib.MACD(close, fastperiod=p[0], slowperiod=p[1], signalperiod=p[2])
            series[ind.name] = {"macd": _values(macd), "signal": _values(signal), "hist": _values(hist)}
        elif ind.kind == "bbands":
            upper, middle, lower = talib.BBANDS(close, timeperiod=p[0], nbdevup=p[1], nbdevdn=p[1])
            series[ind.name] = {"upper": _values(upper), "middle": _values(middle), "lower": _values(lower)}
        elif ind.kind == "vwap":
            typical = (high + low + close) / 3
            sessions = np.asarray(session_days) if session_days is not None else np.zeros(len(close))
            pv = _session_cumsum(typical * volume, sessions)
            vol = _session_cumsum(volume, sessions)
            with np.errstate(invalid="ignore", divide="ignore"):
                series[ind.name] = _values(np.where(vol > 0, pv / vol, np.nan))
    return series
