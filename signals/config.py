"""Tunable weights and thresholds of the signal engine, passed explicitly so the engine never reads settings."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

FACTOR_NAMES: tuple[str, ...] = ("rsi", "macd", "bollinger", "trend", "volume", "prediction")


@dataclass(frozen=True, kw_only=True)
class SignalConfig:
    """Every knob of the rules, levels and backtest; the defaults suit daily candles.

    Factor weights are relative: the score is the weighted average of the factor scores that are present on a bar,
    so they need not sum to 1. A factor with weight 0 is not computed at all and does not count towards
    `required_bars`. The prediction factor is present only when a predicted return is given.
    """

    # Factor weights.
    rsi_weight: float = 0.20
    macd_weight: float = 0.20
    bollinger_weight: float = 0.15
    trend_weight: float = 0.20
    volume_weight: float = 0.10
    prediction_weight: float = 0.15

    # RSI: below `rsi_oversold` scores +0.5, growing linearly to +1 at `rsi_full_scale` points below it;
    # overbought mirrors it; anything in between is neutral (0).
    rsi_period: int = 14
    rsi_oversold: float = 30.0
    rsi_overbought: float = 70.0
    rsi_full_scale: float = 15.0

    # MACD: a signal-line cross within the last `macd_cross_lookback` bars dominates (±1 on the last bar,
    # fading to ±0.5); otherwise the histogram's sign and direction give up to ±0.5.
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    macd_cross_lookback: int = 5

    # Bollinger bands (mean reversion): score = 0.5 − %B clipped to [−1, 1], i.e. +0.5 on the lower band,
    # +1 half a band-width below it.
    bollinger_period: int = 20
    bollinger_std: float = 2.0

    # Trend: ±0.25 for close vs each SMA, ±0.25 for SMA fast vs slow, ±0.5 instead when they crossed
    # (golden/death cross) within the last `ma_cross_lookback` bars.
    sma_fast: int = 50
    sma_slow: int = 200
    ma_cross_lookback: int = 10

    # Volume: today's volume over the average of the previous `volume_period` bars; a ratio r > 1 scores
    # (r − 1)/(volume_full_ratio − 1), capped at 1, signed by the close-to-close move.
    volume_period: int = 20
    volume_full_ratio: float = 2.0

    # Prediction: the expected return (a fraction) divided by this scale, clipped to [−1, 1]; 0.02 maps ±2% to ±1.
    prediction_full_scale: float = 0.02

    # Decision: BUY when score > buy_threshold, SELL when score < −buy_threshold, otherwise HOLD.
    buy_threshold: float = 0.2

    # Stop loss and target (see signals.levels): the stop sits at least `atr_multiple` ATRs beyond the entry,
    # `stop_buffer_atr` ATRs beyond the nearest support (BUY) or resistance (SELL), and `min_stop_pct` beyond
    # that level (or the entry when there is none); the target is the first level paying at least `risk_reward`
    # times the risk, else exactly that multiple. No long stop or short target goes below `price_floor_fraction`
    # of its reference price, which keeps tiny-price stocks with a large ATR positive.
    atr_period: int = 14
    atr_multiple: float = 1.5
    stop_buffer_atr: float = 0.25
    min_stop_pct: float = 0.005
    risk_reward: float = 2.0
    price_floor_fraction: float = 0.5

    # Support/resistance: fractal pivots (a high/low that is the extreme of `pivot_window` bars on each side)
    # over the last `pivot_lookback` bars, clustered when within `level_tolerance_atr` ATRs of each other.
    pivot_lookback: int = 120
    pivot_window: int = 3
    level_tolerance_atr: float = 0.5

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.type == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{field.name} must be an integer, got {value!r}")
            if field.type == "float" and (
                isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
            ):
                raise ValueError(f"{field.name} must be a finite number, got {value!r}")
        weights = self.weights
        if any(weight < 0 for weight in weights.values()):
            raise ValueError("factor weights must be >= 0")
        if sum(weight for name, weight in weights.items() if name != "prediction") <= 0:
            raise ValueError("at least one technical factor (not only prediction) needs a positive weight")
        checks = {
            "periods must be >= 1": min(
                self.rsi_period,
                self.macd_fast,
                self.macd_signal,
                self.bollinger_period,
                self.sma_fast,
                self.volume_period,
                self.atr_period,
                self.macd_cross_lookback,
                self.ma_cross_lookback,
                self.pivot_window,
            )
            >= 1,
            "need 0 < rsi_oversold < rsi_overbought < 100": 0 < self.rsi_oversold < self.rsi_overbought < 100,
            "need macd_fast < macd_slow": self.macd_fast < self.macd_slow,
            "need sma_fast < sma_slow": self.sma_fast < self.sma_slow,
            "need bollinger_period >= 2": self.bollinger_period >= 2,
            "need 0 <= buy_threshold < 1": 0 <= self.buy_threshold < 1,
            "need pivot_lookback >= 2 * pivot_window + 1": self.pivot_lookback >= 2 * self.pivot_window + 1,
            "need 0 < min_stop_pct < 1 - price_floor_fraction": 0
            < self.min_stop_pct
            < 1 - self.price_floor_fraction,
            "need 0 < price_floor_fraction < 1": 0 < self.price_floor_fraction < 1,
            "need volume_full_ratio > 1": self.volume_full_ratio > 1,
            "rsi_full_scale, bollinger_std, prediction_full_scale, atr_multiple and risk_reward must be > 0": min(
                self.rsi_full_scale,
                self.bollinger_std,
                self.prediction_full_scale,
                self.atr_multiple,
                self.risk_reward,
            )
            > 0,
            "stop_buffer_atr and level_tolerance_atr must be >= 0": min(
                self.stop_buffer_atr, self.level_tolerance_atr
            )
            >= 0,
        }
        failed = [message for message, ok in checks.items() if not ok]
        if failed:
            raise ValueError("; ".join(failed))

    @property
    def weights(self) -> dict[str, float]:
        """Factor name → weight, in the order factors are reported."""
        return {name: getattr(self, f"{name}_weight") for name in FACTOR_NAMES}

    @classmethod
    def from_mapping(cls, overrides: Mapping[str, Any] | None) -> SignalConfig:
        """Build from settings overrides; unknown keys and badly typed values raise ValueError."""
        overrides = dict(overrides or {})
        known = {field.name: field.type for field in fields(cls)}
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise ValueError(f"Unknown signal config keys: {', '.join(unknown)}")
        return cls(**{key: _coerce(key, value, known[key]) for key, value in overrides.items()})


def _coerce(key: str, value: Any, type_name: str) -> int | float:
    """Accept numbers and numeric strings (environment values) but never lose information silently."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number, got {value!r}") from None
    if isinstance(value, bool):
        raise ValueError(f"{key} must be a number, got {value!r}")
    if type_name == "int":
        if not number.is_integer():
            raise ValueError(f"{key} must be an integer, got {value!r}")
        return int(number)
    return number


DEFAULT_CONFIG = SignalConfig()
