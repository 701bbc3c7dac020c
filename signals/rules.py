"""Explainable BUY/SELL/HOLD rules over closed candles.

Each factor scores the latest bar in [-1, 1] (positive is bullish) and explains itself in words. The signal score
is the weighted average of the factors present on the bar (the prediction factor only when a prediction is
given), so it stays in [-1, 1]; a factor's contribution is weight × score / (sum of present weights), and the
contributions add up to the score. BUY when score > buy_threshold, SELL when score < -buy_threshold, HOLD
otherwise. Strength is |score|: the net share of the weighted evidence that agrees with the direction.

Indicators come from TA-Lib and are causal, so computing them once over a whole series gives, at bar t, exactly
what a computation over candles[:t+1] gives; `evaluate` is `evaluate_series` read at the last bar.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from signals.config import DEFAULT_CONFIG, FACTOR_NAMES, SignalConfig
from signals.levels import compute_levels

if TYPE_CHECKING:
    import pandas as pd

_REQUIRED_COLUMNS = ("open", "high", "low", "close", "volume")
# Bands narrower than this fraction of the middle band are numerically flat (TA-Lib's variance rounding).
_FLAT_BAND_FRACTION = 1e-6


class SignalType(StrEnum):
    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"


class InsufficientHistory(ValueError):
    """Too few candles for the configured indicators; `needed` and `available` are bar counts."""

    def __init__(self, *, needed: int, available: int) -> None:
        super().__init__(f"Need at least {needed} candles for a signal, got {available}")
        self.needed = needed
        self.available = available


@dataclass(frozen=True, kw_only=True)
class Factor:
    """One reason behind a signal: its reading, its score in [-1, 1] and its weighted share of the total score."""

    name: str
    value: float | None
    score: float
    weight: float
    contribution: float
    explanation: str

    def to_dict(self) -> dict[str, str | float | None]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class SignalResult:
    """The signal at the last candle, with its reasons and the price levels of the would-be trade."""

    signal_type: SignalType
    strength: float
    score: float
    factors: tuple[Factor, ...]
    reasoning: str
    entry_price: float
    candle_time: pd.Timestamp
    atr: float
    support_level: float | None
    resistance_level: float | None
    stop_loss: float | None
    price_target: float | None

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["signal_type"] = str(self.signal_type)
        data["factors"] = [factor.to_dict() for factor in self.factors]
        return data


def required_bars(config: SignalConfig = DEFAULT_CONFIG) -> int:
    """Fewest candles for which every active factor, and the ATR, is defined at the last bar."""
    needs = {
        # TA-Lib's lookbacks: ATR and RSI need `period` earlier bars, MACD (slow - 1) + (signal - 1), SMA
        # and BBANDS period - 1. Cross detection also needs the line on the bar before the oldest bar inspected.
        "atr": config.atr_period + 1,
        "rsi": config.rsi_period + 1,
        "macd": config.macd_slow + config.macd_signal + config.macd_cross_lookback - 1,
        "bollinger": config.bollinger_period,
        "trend": config.sma_slow + config.ma_cross_lookback,
        "volume": config.volume_period + 1,
        "prediction": 1,
    }
    weights = config.weights
    return max(need for name, need in needs.items() if name == "atr" or weights[name] > 0)


def evaluate(
    candles: pd.DataFrame,
    *,
    config: SignalConfig = DEFAULT_CONFIG,
    predicted_return: float | None = None,
) -> SignalResult:
    """The signal at the last closed candle; `predicted_return` is the latest model's expected return (0.01 = 1%)."""
    if predicted_return is not None and not np.isfinite(predicted_return):
        raise ValueError(f"predicted_return must be finite, got {predicted_return!r}")
    needed = required_bars(config)
    if len(candles) < needed:
        raise InsufficientHistory(needed=needed, available=len(candles))
    predictions = None
    if predicted_return is not None:
        predictions = np.full(len(candles), np.nan)
        predictions[-1] = predicted_return
    computed = _compute(candles, config, predictions)
    last = len(candles) - 1
    score = float(computed.score[last])
    signal_type = _signal_type(score, config)
    factors = []
    for name, series in computed.factors.items():
        factor_score = float(series.score[last])
        if np.isnan(factor_score):
            continue
        weight = config.weights[name]
        value = float(series.value[last])
        factors.append(
            Factor(
                name=name,
                value=None if np.isnan(value) else value,
                score=factor_score,
                weight=weight,
                contribution=weight * factor_score / float(computed.total_weight[last]),
                explanation=series.describe(last),
            )
        )
    reasons = sorted(factors, key=lambda factor: abs(factor.contribution), reverse=True)
    entry = float(computed.close[last])
    atr = float(computed.atr[last])
    levels = compute_levels(candles, signal_type=signal_type, entry=entry, atr=atr, config=config)
    return SignalResult(
        signal_type=signal_type,
        strength=abs(score),
        score=score,
        factors=tuple(factors),
        reasoning="; ".join(f"{factor.explanation} ({factor.contribution:+.2f})" for factor in reasons),
        entry_price=entry,
        candle_time=candles.index[last],
        atr=atr,
        support_level=levels.support,
        resistance_level=levels.resistance,
        stop_loss=levels.stop_loss,
        price_target=levels.price_target,
    )


def evaluate_series(
    candles: pd.DataFrame,
    config: SignalConfig = DEFAULT_CONFIG,
    predicted_returns: pd.Series | Sequence[float] | np.ndarray | None = None,
) -> pd.DataFrame:
    """Score, signal and strength at every bar, equal to `evaluate(candles[:t+1])` at each t.

    `predicted_returns` is the latest prediction known at each bar: a Series indexed by candle timestamps (missing
    bars have none) or an array aligned with `candles`; NaN means no prediction. Bars before `required_bars` have
    NaN scores and no signal. Columns: score, strength, signal, atr and `<factor>_score` for each active factor.
    """
    import pandas as pd

    predictions = None
    if predicted_returns is not None:
        if isinstance(predicted_returns, pd.Series):
            predictions = predicted_returns.reindex(candles.index).to_numpy(dtype=np.float64)
        else:
            predictions = np.asarray(predicted_returns, dtype=np.float64)
        if predictions.shape != (len(candles),):
            raise ValueError(f"predicted_returns has {predictions.size} values for {len(candles)} candles")
        if np.isinf(predictions).any():
            raise ValueError("predicted_returns must be finite or NaN")
    computed = _compute(candles, config, predictions)
    signal = np.full(len(candles), None, dtype=object)
    ready = ~np.isnan(computed.score)
    signal[ready] = [str(_signal_type(score, config)) for score in computed.score[ready].tolist()]
    columns: dict[str, np.ndarray] = {
        "score": computed.score,
        "strength": np.abs(computed.score),
        "signal": signal,
        "atr": computed.atr,
    }
    for name, series in computed.factors.items():
        columns[f"{name}_score"] = np.where(ready, series.score, np.nan)
    return pd.DataFrame(columns, index=candles.index)


def _signal_type(score: float, config: SignalConfig) -> SignalType:
    if score > config.buy_threshold:
        return SignalType.BUY
    if score < -config.buy_threshold:
        return SignalType.SELL
    return SignalType.HOLD


@dataclass(frozen=True)
class _FactorSeries:
    """A factor at every bar: its reading (NaN when meaningless), its score and a describer for one bar."""

    value: np.ndarray
    score: np.ndarray
    describe: Callable[[int], str]


@dataclass(frozen=True)
class _Computed:
    close: np.ndarray
    atr: np.ndarray
    factors: dict[str, _FactorSeries]
    total_weight: np.ndarray
    score: np.ndarray


def _compute(candles: pd.DataFrame, config: SignalConfig, predictions: np.ndarray | None) -> _Computed:
    """All indicators and factor scores over the whole series, in element-wise arithmetic only, so that a prefix
    of the input gives bit-for-bit the same values as the whole series at the same bars."""
    import talib

    high, low, close, volume = _arrays(candles)
    weights = config.weights
    builders: dict[str, Callable[[], _FactorSeries]] = {
        "rsi": lambda: _rsi(close, config),
        "macd": lambda: _macd(close, config),
        "bollinger": lambda: _bollinger(close, config),
        "trend": lambda: _trend(close, config),
        "volume": lambda: _volume(close, volume, config),
    }
    if predictions is not None:
        builders["prediction"] = lambda: _prediction(predictions, config)
    factors = {name: builders[name]() for name in FACTOR_NAMES if weights[name] > 0 and name in builders}
    weighted = np.zeros(len(close))
    total_weight = np.zeros(len(close))
    for name, series in factors.items():
        present = ~np.isnan(series.score)
        weighted = weighted + np.where(present, weights[name] * series.score, 0.0)
        total_weight = total_weight + np.where(present, weights[name], 0.0)
    score = np.full(len(close), np.nan)
    ready = slice(required_bars(config) - 1, None)
    score[ready] = np.clip(weighted[ready] / total_weight[ready], -1.0, 1.0)
    atr = talib.ATR(high, low, close, timeperiod=config.atr_period)
    return _Computed(close=close, atr=atr, factors=factors, total_weight=total_weight, score=score)


def _arrays(candles: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """High, low, close and volume as float64 arrays, after checking the candle frame convention."""
    import pandas as pd

    missing = [column for column in _REQUIRED_COLUMNS if column not in candles.columns]
    if missing:
        raise ValueError(f"candles lack columns: {', '.join(missing)}")
    index = candles.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise ValueError("candles must be indexed by a tz-aware DatetimeIndex")
    if not (index.is_monotonic_increasing and index.is_unique):
        raise ValueError("candle timestamps must be strictly increasing")
    prices = candles[["open", "high", "low", "close"]].to_numpy(dtype=np.float64)
    if not (np.isfinite(prices).all() and (prices > 0).all()):
        raise ValueError("candle prices must be positive and finite")
    volume = candles["volume"].to_numpy(dtype=np.float64)
    return prices[:, 1].copy(), prices[:, 2].copy(), prices[:, 3].copy(), volume


def _shift(values: np.ndarray) -> np.ndarray:
    """The previous bar's value (NaN on the first bar)."""
    shifted = np.empty_like(values, dtype=np.float64)
    shifted[0] = np.nan
    shifted[1:] = values[:-1]
    return shifted


def _last_event(up: np.ndarray, down: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bars since the latest up/down event at or before each bar (a huge number when none) and its direction."""
    index = np.arange(len(up))
    last = np.maximum.accumulate(np.where(up | down, index, -1))
    bars_ago = np.where(last >= 0, index - last, np.iinfo(np.int64).max)
    direction = np.where(last >= 0, np.where(up[np.maximum(last, 0)], 1.0, -1.0), 0.0)
    return bars_ago, direction


def _ago(bars: int) -> str:
    if bars == 0:
        return "on the last bar"
    return "1 bar ago" if bars == 1 else f"{bars} bars ago"


def _price(value: float) -> str:
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.4g}"


def _beside(value: float, thresholds: Sequence[float], places: int) -> str:
    """`value` to `places` decimals, or more where fewer would round it onto or across a threshold the words
    compare it with: an RSI of 29.97 reads "RSI 29.97 < 30", not "RSI 30.0 < 30"."""
    for more in range(places, places + 8):
        text = f"{value:.{more}f}"
        if all(np.sign(float(text) - t) == np.sign(value - t) for t in thresholds):
            break
    return text


def _apart(a: float, b: float) -> tuple[str, str]:
    """Two prices the words say are apart (a close below a band), with enough decimals to show it."""
    text_a, text_b = _price(a), _price(b)
    for places in range(3, 9):
        if a == b or text_a != text_b:
            break
        text_a, text_b = f"{a:.{places}f}", f"{b:.{places}f}"
    return text_a, text_b


def _rsi(close: np.ndarray, config: SignalConfig) -> _FactorSeries:
    """Mean reversion: oversold is bullish, overbought bearish, graded by depth beyond the threshold."""
    import talib

    period, oversold, overbought = config.rsi_period, config.rsi_oversold, config.rsi_overbought
    rsi = talib.RSI(close, timeperiod=period)
    # TA-Lib reports 0 when nothing moved (no gains, no losses): that is not "oversold".
    flat = talib.MAX(close, timeperiod=period + 1) == talib.MIN(close, timeperiod=period + 1)
    below = 0.5 + 0.5 * np.minimum((oversold - rsi) / config.rsi_full_scale, 1.0)
    above = -0.5 - 0.5 * np.minimum((rsi - overbought) / config.rsi_full_scale, 1.0)
    score = np.where(rsi < oversold, below, np.where(rsi > overbought, above, 0.0))
    score = np.where(flat, 0.0, np.where(np.isnan(rsi), np.nan, score))

    def describe(i: int) -> str:
        if flat[i]:
            return f"RSI undefined: no price change over {period + 1} bars"
        value = rsi[i]
        full = config.rsi_full_scale
        shown = _beside(value, (oversold, overbought, oversold - full, overbought + full), 1)
        if value < oversold:
            depth = "deeply oversold" if oversold - value >= full else "oversold"
            return f"RSI {shown} < {oversold:g}: {depth}"
        if value > overbought:
            depth = "deeply overbought" if value - overbought >= full else "overbought"
            return f"RSI {shown} > {overbought:g}: {depth}"
        return f"RSI {shown} within {oversold:g}-{overbought:g}: neutral"

    return _FactorSeries(value=np.where(flat, np.nan, rsi), score=score, describe=describe)


def _macd(close: np.ndarray, config: SignalConfig) -> _FactorSeries:
    """A recent signal-line cross dominates (fading with age); otherwise histogram sign and direction."""
    import talib

    _, _, histogram = talib.MACD(
        close, fastperiod=config.macd_fast, slowperiod=config.macd_slow, signalperiod=config.macd_signal
    )
    previous = _shift(histogram)
    lookback = config.macd_cross_lookback
    bars_ago, direction = _last_event((histogram > 0) & (previous <= 0), (histogram < 0) & (previous >= 0))
    recent = bars_ago < lookback
    cross_score = direction * (1.0 - 0.5 * np.minimum(bars_ago, lookback) / lookback)
    momentum_score = 0.25 * np.sign(histogram) + 0.25 * np.sign(histogram - previous)
    score = np.where(recent, cross_score, momentum_score)

    def describe(i: int) -> str:
        if recent[i]:
            side = "above" if direction[i] > 0 else "below"
            return f"MACD crossed {side} signal {_ago(int(bars_ago[i]))}"
        change = histogram[i] - previous[i]
        trend = "rising" if change > 0 else "falling" if change < 0 else "flat"
        if histogram[i] == 0:
            return f"MACD on its signal line, histogram {trend}"
        side = "above" if histogram[i] > 0 else "below"
        joiner = "," if (histogram[i] > 0) == (change > 0) and change != 0 else " but"
        return f"MACD {side} signal{joiner} histogram {trend}"

    return _FactorSeries(value=histogram, score=score, describe=describe)


def _bollinger(close: np.ndarray, config: SignalConfig) -> _FactorSeries:
    """Mean reversion against the bands: +0.5 on the lower band, -0.5 on the upper, ±1 half a width beyond."""
    import talib

    upper, middle, lower = talib.BBANDS(
        close,
        timeperiod=config.bollinger_period,
        nbdevup=config.bollinger_std,
        nbdevdn=config.bollinger_std,
        matype=talib.MA_Type.SMA,
    )
    width = upper - lower
    open_bands = width > _FLAT_BAND_FRACTION * middle
    percent_b = np.divide(close - lower, width, out=np.full(len(close), np.nan), where=open_bands)
    score = np.where(open_bands, np.clip(0.5 - percent_b, -1.0, 1.0), np.where(np.isnan(width), np.nan, 0.0))

    def describe(i: int) -> str:
        if not open_bands[i]:
            return "Bollinger bands flat: no volatility"
        if close[i] < lower[i]:
            shown_close, band = _apart(close[i], lower[i])
            return f"close {shown_close} below lower Bollinger band {band}"
        if close[i] > upper[i]:
            shown_close, band = _apart(close[i], upper[i])
            return f"close {shown_close} above upper Bollinger band {band}"
        half = "lower" if percent_b[i] < 0.5 else "upper" if percent_b[i] > 0.5 else "middle of the"
        return f"close in {half} half of Bollinger bands (%B {_beside(percent_b[i], (0.0, 0.5, 1.0), 2)})"

    return _FactorSeries(value=percent_b, score=score, describe=describe)


def _trend(close: np.ndarray, config: SignalConfig) -> _FactorSeries:
    """Close against both SMAs and the SMAs against each other; a recent golden/death cross counts double."""
    import talib

    fast = talib.SMA(close, timeperiod=config.sma_fast)
    slow = talib.SMA(close, timeperiod=config.sma_slow)
    regime = np.sign(fast - slow)
    previous = _shift(regime)
    bars_ago, direction = _last_event((regime > 0) & (previous <= 0), (regime < 0) & (previous >= 0))
    fresh_cross = (bars_ago < config.ma_cross_lookback) & (direction == regime)
    score = (
        0.25 * np.sign(close - fast)
        + 0.25 * np.sign(close - slow)
        + np.where(fresh_cross, 0.5, 0.25) * regime
    )
    fast_name, slow_name = f"SMA{config.sma_fast}", f"SMA{config.sma_slow}"

    def side(a: float, b: float) -> str:
        return "above" if a > b else "below" if a < b else "at"

    def describe(i: int) -> str:
        label = "uptrend" if score[i] >= 0.5 else "downtrend" if score[i] <= -0.5 else "mixed trend"
        if fresh_cross[i]:
            cross = "golden cross" if regime[i] > 0 else "death cross"
            relation = (
                f"{cross} {_ago(int(bars_ago[i]))} ({fast_name} crossed {side(fast[i], slow[i])} {slow_name})"
            )
        else:
            relation = f"{fast_name} {side(fast[i], slow[i])} {slow_name}"
        return (
            f"{label}: close {side(close[i], fast[i])} {fast_name} and {side(close[i], slow[i])} {slow_name}; "
            f"{relation}"
        )

    return _FactorSeries(value=close / slow - 1.0, score=score, describe=describe)


def _volume(close: np.ndarray, volume: np.ndarray, config: SignalConfig) -> _FactorSeries:
    """Above-average volume confirms the close-to-close move; no volume data (indices) is neutral."""
    import talib

    period, full_ratio = config.volume_period, config.volume_full_ratio
    average = _shift(talib.SMA(volume, timeperiod=period))
    has_volume = average > 0
    ratio = np.divide(volume, average, out=np.full(len(close), np.nan), where=has_volume)
    move = np.sign(close - _shift(close))
    confirmation = np.clip((ratio - 1.0) / (full_ratio - 1.0), 0.0, 1.0)
    # "+ 0.0" turns the -0.0 of a down day without confirmation into 0.0.
    score = np.where(has_volume, move * confirmation + 0.0, np.where(np.isnan(average), np.nan, 0.0))

    def describe(i: int) -> str:
        if not has_volume[i]:
            return "no volume data: neutral"
        reading = f"volume {_beside(ratio[i], (1.0, full_ratio), 1)}x its {period}-bar average"
        if ratio[i] <= 1:
            return f"{reading}: no confirmation"
        if move[i] == 0:
            return f"{reading} but close unchanged: no direction"
        strength = "confirms" if ratio[i] >= full_ratio else "partly confirms"
        day, side = ("an up", "buying") if move[i] > 0 else ("a down", "selling")
        return f"{reading} on {day} day: {strength} {side}"

    return _FactorSeries(value=ratio, score=score, describe=describe)


def _prediction(predictions: np.ndarray, config: SignalConfig) -> _FactorSeries:
    """The model's expected return, scaled so that ±prediction_full_scale maps to ±1; NaN means no prediction."""
    score = np.clip(predictions / config.prediction_full_scale, -1.0, 1.0)

    def describe(i: int) -> str:
        return f"model predicts {predictions[i] * 100:+.2f}% return"

    return _FactorSeries(value=predictions, score=score, describe=describe)
