"""Support/resistance from clustered swing pivots, and the stop loss and target they imply.

Levels are fractal pivots: a bar whose high (low) is the highest (lowest) of `pivot_window` bars on each side,
taken over the last `pivot_lookback` bars. A pivot is only known `pivot_window` bars after it happened, so the
levels at bar t use nothing after t. Swing highs and lows are pooled (broken resistance becomes support) and
clustered when within `level_tolerance_atr` ATRs; each cluster's level is the mean of its pivots.

Rules, for an entry price E and ATR A:

* support is the nearest level strictly below E, resistance the nearest strictly above (None when absent);
* BUY stop = min(E − atr_multiple·A, support − stop_buffer_atr·A, R·(1 − min_stop_pct)) where R is the support,
  or E without support; it never goes below price_floor_fraction × R, which keeps it positive for tiny prices;
* BUY target = the first level above E that pays at least risk_reward × risk, else E + risk_reward × risk;
* SELL mirrors both (its target is floored at price_floor_fraction × E);
* HOLD has no stop and no target: there is no trade to protect.

So BUY: stop < E < target and stop < support; SELL: target < E < stop and stop > resistance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from signals.config import DEFAULT_CONFIG, SignalConfig

if TYPE_CHECKING:
    import pandas as pd

_SIGNAL_TYPES = ("BUY", "SELL", "HOLD")


@dataclass(frozen=True, kw_only=True)
class Levels:
    """Price levels for one signal; every price is positive and finite when present."""

    support: float | None
    resistance: float | None
    stop_loss: float | None
    price_target: float | None

    def to_dict(self) -> dict[str, float | None]:
        return asdict(self)


def compute_levels(
    candles: pd.DataFrame,
    *,
    signal_type: str,
    entry: float,
    atr: float,
    config: SignalConfig = DEFAULT_CONFIG,
) -> Levels:
    """Support, resistance, stop loss and target at the last candle for a trade entered at `entry`."""
    if signal_type not in _SIGNAL_TYPES:
        raise ValueError(f"signal_type must be one of {', '.join(_SIGNAL_TYPES)}, got {signal_type!r}")
    if not (np.isfinite(entry) and entry > 0):
        raise ValueError(f"entry must be a positive finite price, got {entry!r}")
    if not (np.isfinite(atr) and atr >= 0):
        raise ValueError(f"atr must be finite and >= 0, got {atr!r}")
    window = candles.iloc[-config.pivot_lookback :]
    levels = pivot_levels(
        window["high"].to_numpy(dtype=np.float64),
        window["low"].to_numpy(dtype=np.float64),
        window=config.pivot_window,
        tolerance=config.level_tolerance_atr * atr,
    )
    support = max((level for level in levels if level < entry), default=None)
    resistance = min((level for level in levels if level > entry), default=None)
    if signal_type == "BUY":
        reference = entry if support is None else support
        stop = min(entry - config.atr_multiple * atr, reference * (1 - config.min_stop_pct))
        if support is not None:
            stop = min(stop, support - config.stop_buffer_atr * atr)
        stop = max(stop, config.price_floor_fraction * reference)
        reward = config.risk_reward * (entry - stop)
        target = min((level for level in levels if level - entry >= reward), default=entry + reward)
    elif signal_type == "SELL":
        reference = entry if resistance is None else resistance
        stop = max(entry + config.atr_multiple * atr, reference * (1 + config.min_stop_pct))
        if resistance is not None:
            stop = max(stop, resistance + config.stop_buffer_atr * atr)
        reward = config.risk_reward * (stop - entry)
        target = max((level for level in levels if entry - level >= reward), default=entry - reward)
        target = max(target, config.price_floor_fraction * entry)
    else:
        stop = target = None
    return Levels(support=support, resistance=resistance, stop_loss=stop, price_target=target)


def pivot_levels(high: np.ndarray, low: np.ndarray, *, window: int, tolerance: float) -> list[float]:
    """Clustered fractal pivot prices, ascending; only pivots confirmed by `window` later bars count."""
    span = 2 * window + 1
    if len(high) < span:
        return []
    middle = slice(window, len(high) - window)
    swing_highs = high[middle][high[middle] >= sliding_window_view(high, span).max(axis=1)]
    swing_lows = low[middle][low[middle] <= sliding_window_view(low, span).min(axis=1)]
    prices = np.sort(np.concatenate([swing_highs, swing_lows]))
    levels: list[float] = []
    cluster: list[float] = []
    for price in prices.tolist():
        if cluster and price - cluster[0] > tolerance:
            levels.append(sum(cluster) / len(cluster))
            cluster = []
        cluster.append(price)
    if cluster:
        levels.append(sum(cluster) / len(cluster))
    return levels
