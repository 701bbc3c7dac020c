import math

import numpy as np
import pandas as pd
import pytest
import talib

from signals.config import SignalConfig
from signals.rules import (
    InsufficientHistory,
    SignalType,
    evaluate,
    evaluate_series,
    required_bars,
)
from signals.tests.engine.factories import from_closes, random_walk, zigzag

WARMUP = 230


def factor(result, name):
    return next(factor for factor in result.factors if factor.name == name)


def first_sign_change(values: np.ndarray, *, upward: bool) -> int:
    """The first bar whose value turns positive (upward) or negative, after a valid bar of the other sign."""
    previous, current = values[:-1], values[1:]
    crossed = (current > 0) & (previous <= 0) if upward else (current < 0) & (previous >= 0)
    return int(np.flatnonzero(crossed)[0]) + 1


# --- history ---------------------------------------------------------------------------------------


def test_required_bars_is_driven_by_the_slowest_active_factor():
    assert required_bars(SignalConfig()) == 200 + 10  # SMA200 plus the golden-cross lookback
    rsi_only = SignalConfig(macd_weight=0, bollinger_weight=0, trend_weight=0, volume_weight=0)
    assert required_bars(rsi_only) == 15  # RSI(14) and ATR(14) need 14 earlier bars
    macd_only = SignalConfig(rsi_weight=0, bollinger_weight=0, trend_weight=0, volume_weight=0)
    assert required_bars(macd_only) == 26 + 9 + 5 - 1


def test_too_few_candles_raise_insufficient_history_with_counts():
    candles = random_walk(209, seed=1)
    with pytest.raises(InsufficientHistory) as error:
        evaluate(candles)
    assert (error.value.needed, error.value.available) == (210, 209)
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize("seed", range(5))
def test_exactly_required_bars_give_every_factor_a_defined_value(seed):
    candles = random_walk(required_bars(), seed=seed)
    result = evaluate(candles, predicted_return=0.01)
    assert [f.name for f in result.factors] == ["rsi", "macd", "bollinger", "trend", "volume", "prediction"]
    assert all(
        math.isfinite(f.score) and f.value is not None and math.isfinite(f.value) for f in result.factors
    )
    assert math.isfinite(result.score) and math.isfinite(result.atr)


# --- factors ---------------------------------------------------------------------------------------


def test_steady_fall_is_oversold_with_a_positive_rsi_score():
    steps = np.arange(WARMUP)
    closes = 300 - 0.25 * steps - np.where(steps % 2 == 0, 0.0, 0.4)  # down 0.65, up 0.15: RSI near 19
    rsi = factor(evaluate(from_closes(closes)), "rsi")
    assert rsi.value < 30
    assert rsi.score > 0.5
    assert rsi.explanation.startswith(f"RSI {rsi.value:.1f} < 30: oversold")


def test_steady_rise_is_overbought_with_a_negative_rsi_score():
    steps = np.arange(WARMUP)
    closes = 100 + 0.25 * steps + np.where(steps % 2 == 0, 0.0, 0.4)
    rsi = factor(evaluate(from_closes(closes)), "rsi")
    assert rsi.value > 70
    assert rsi.score < -0.5
    assert rsi.explanation.startswith(f"RSI {rsi.value:.1f} > 70: overbought")


def test_rsi_grading_reaches_full_score_when_deeply_oversold():
    closes = np.linspace(300, 100, WARMUP)  # nothing but losses: RSI 0
    rsi = factor(evaluate(from_closes(closes)), "rsi")
    assert rsi.score == 1.0
    assert rsi.explanation == "RSI 0.0 < 30: deeply oversold"


def test_rsi_is_neutral_in_a_sideways_market_and_when_nothing_moves():
    sideways = factor(evaluate(from_closes(zigzag(WARMUP))), "rsi")
    assert sideways.score == 0.0 and "neutral" in sideways.explanation
    flat = factor(evaluate(from_closes(np.full(WARMUP, 50.0))), "rsi")
    assert flat.score == 0.0 and flat.value is None
    assert flat.explanation == "RSI undefined: no price change over 15 bars"


def _bullish_turn() -> np.ndarray:
    steps = np.arange(300)
    return np.where(steps < 260, 400 - 0.5 * steps, 270 + 1.5 * (steps - 260))


def test_macd_bullish_cross_scores_positive_and_says_how_long_ago():
    closes = _bullish_turn()
    _, _, histogram = talib.MACD(closes, 12, 26, 9)
    cross = first_sign_change(histogram, upward=True)
    result = evaluate(from_closes(closes[: cross + 3]))
    macd = factor(result, "macd")
    assert macd.explanation == "MACD crossed above signal 2 bars ago"
    assert macd.score == pytest.approx(1 - 0.5 * 2 / 5)


def test_macd_bearish_cross_on_the_last_bar_scores_minus_one():
    closes = 1000 - _bullish_turn()
    _, _, histogram = talib.MACD(closes, 12, 26, 9)
    cross = first_sign_change(histogram, upward=False)
    macd = factor(evaluate(from_closes(closes[: cross + 1])), "macd")
    assert macd.explanation == "MACD crossed below signal on the last bar"
    assert macd.score == -1.0


def test_macd_without_a_recent_cross_scores_histogram_sign_and_direction():
    closes = _bullish_turn()
    _, _, histogram = talib.MACD(closes, 12, 26, 9)
    cross = first_sign_change(histogram, upward=True)
    macd = factor(evaluate(from_closes(closes[: cross + 8])), "macd")  # still accelerating upwards
    assert histogram[cross + 7] > 0 and histogram[cross + 7] > histogram[cross + 6]
    assert macd.explanation == "MACD above signal, histogram rising"
    assert macd.score == 0.5


def test_close_below_lower_bollinger_band_scores_positive():
    closes = np.append(zigzag(WARMUP - 1), 92.0)
    bollinger = factor(evaluate(from_closes(closes)), "bollinger")
    assert bollinger.value < 0  # %B
    assert bollinger.score > 0.5
    assert bollinger.explanation.startswith("close 92.00 below lower Bollinger band")


def test_close_above_upper_bollinger_band_scores_negative():
    closes = np.append(zigzag(WARMUP - 1), 108.0)
    bollinger = factor(evaluate(from_closes(closes)), "bollinger")
    assert bollinger.score < -0.5
    assert bollinger.explanation.startswith("close 108.00 above upper Bollinger band")


def _golden_cross_closes() -> np.ndarray:
    steps = np.arange(400)
    return np.where(steps < 250, 400 - 0.8 * steps, 200 + 2.0 * (steps - 250))


def test_golden_cross_gives_the_full_positive_trend_score():
    closes = _golden_cross_closes()
    cross = first_sign_change(talib.SMA(closes, 50) - talib.SMA(closes, 200), upward=True)
    trend = factor(evaluate(from_closes(closes[: cross + 4])), "trend")
    assert trend.score == 1.0
    assert trend.explanation == (
        "uptrend: close above SMA50 and above SMA200; golden cross 3 bars ago (SMA50 crossed above SMA200)"
    )


def test_death_cross_gives_the_full_negative_trend_score():
    closes = 1000 - _golden_cross_closes()
    cross = first_sign_change(talib.SMA(closes, 50) - talib.SMA(closes, 200), upward=False)
    trend = factor(evaluate(from_closes(closes[: cross + 1])), "trend")
    assert trend.score == -1.0
    assert "death cross on the last bar (SMA50 crossed below SMA200)" in trend.explanation


def test_an_old_cross_counts_as_an_ordinary_regime():
    closes = _golden_cross_closes()
    cross = first_sign_change(talib.SMA(closes, 50) - talib.SMA(closes, 200), upward=True)
    trend = factor(evaluate(from_closes(closes[: cross + 30])), "trend")
    assert trend.score == 0.75
    assert trend.explanation == "uptrend: close above SMA50 and above SMA200; SMA50 above SMA200"


@pytest.mark.parametrize(
    ("last_close", "last_volume", "score", "wording"),
    [
        (103.0, 3000, 1.0, "volume 3.0x its 20-bar average on an up day: confirms buying"),
        (103.0, 1500, 0.5, "volume 1.5x its 20-bar average on an up day: partly confirms buying"),
        (97.0, 3000, -1.0, "volume 3.0x its 20-bar average on a down day: confirms selling"),
        (103.0, 800, 0.0, "volume 0.8x its 20-bar average: no confirmation"),
    ],
)
def test_volume_confirms_the_direction_of_the_days_move(last_close, last_volume, score, wording):
    closes = np.append(zigzag(WARMUP - 1), last_close)
    candles = from_closes(closes, volumes=[1000] * (WARMUP - 1) + [last_volume])
    volume = factor(evaluate(candles), "volume")
    assert volume.score == pytest.approx(score)
    assert volume.explanation == wording


def test_volume_is_neutral_without_volume_data():
    candles = from_closes(np.append(zigzag(WARMUP - 1), 103.0), volumes=[0] * WARMUP)
    volume = factor(evaluate(candles), "volume")
    assert (volume.score, volume.value, volume.explanation) == (0.0, None, "no volume data: neutral")


@pytest.mark.parametrize(
    ("predicted", "score", "wording"),
    [
        (0.01, 0.5, "model predicts +1.00% return"),
        (-0.03, -1.0, "model predicts -3.00% return"),
        (0.0, 0.0, "model predicts +0.00% return"),
    ],
)
def test_prediction_factor_follows_the_sign_of_the_expected_return(predicted, score, wording):
    prediction = factor(evaluate(random_walk(250, seed=3), predicted_return=predicted), "prediction")
    assert prediction.score == pytest.approx(score)
    assert prediction.value == predicted
    assert prediction.explanation == wording


def test_no_prediction_means_no_prediction_factor():
    result = evaluate(random_walk(250, seed=3))
    assert "prediction" not in [f.name for f in result.factors]


# --- combining -------------------------------------------------------------------------------------

RSI_AND_PREDICTION = SignalConfig(
    rsi_weight=1.0,
    prediction_weight=1.0,
    macd_weight=0,
    bollinger_weight=0,
    trend_weight=0,
    volume_weight=0,
)


@pytest.mark.parametrize(
    ("predicted", "signal_type", "score"),
    [(0.02, SignalType.BUY, 0.5), (-0.02, SignalType.SELL, -0.5), (0.006, SignalType.HOLD, 0.15)],
)
def test_weighted_score_decides_the_signal(predicted, signal_type, score):
    candles = from_closes(zigzag(40))  # RSI exactly neutral
    result = evaluate(candles, config=RSI_AND_PREDICTION, predicted_return=predicted)
    assert result.signal_type == signal_type
    assert result.score == pytest.approx(score)
    assert result.strength == pytest.approx(abs(score))


def test_reasoning_lists_weighted_contributions_largest_first():
    candles = from_closes(zigzag(40))
    result = evaluate(candles, config=RSI_AND_PREDICTION, predicted_return=0.02)
    rsi = factor(result, "rsi")
    assert result.reasoning == f"model predicts +2.00% return (+0.50); {rsi.explanation} (+0.00)"
    assert sum(f.contribution for f in result.factors) == pytest.approx(result.score)


def test_result_carries_entry_time_levels_and_serialises():
    candles = random_walk(300, seed=7)
    result = evaluate(candles)
    assert result.entry_price == candles["close"].iloc[-1]
    assert result.candle_time == candles.index[-1]
    data = result.to_dict()
    assert data["signal_type"] in {"BUY", "SELL", "HOLD"}
    assert {"name", "value", "score", "weight", "contribution", "explanation"} <= set(data["factors"][0])
    assert -1 <= result.score <= 1 and 0 <= result.strength <= 1


def test_buy_signal_comes_with_a_stop_below_and_a_target_above():
    closes = np.linspace(300, 100, WARMUP)
    config = SignalConfig(macd_weight=0, bollinger_weight=0, trend_weight=0, volume_weight=0)
    result = evaluate(from_closes(closes), config=config)
    assert result.signal_type == SignalType.BUY
    assert result.stop_loss < result.entry_price < result.price_target


def test_hold_has_no_stop_or_target():
    result = evaluate(from_closes(zigzag(40)), config=RSI_AND_PREDICTION)
    assert result.signal_type == SignalType.HOLD
    assert result.stop_loss is None and result.price_target is None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.drop(columns="volume"), "lack columns: volume"),
        (lambda c: c.tz_localize(None), "tz-aware"),
        (lambda c: c.iloc[::-1], "strictly increasing"),
        (lambda c: c.assign(close=c["close"].where(c.index != c.index[-1], -1.0)), "positive"),
    ],
)
def test_malformed_candles_are_rejected(mutate, message):
    with pytest.raises(ValueError, match=message):
        evaluate(mutate(random_walk(250, seed=2)))


# --- evaluate_series ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [11, 12])
def test_series_agrees_exactly_with_evaluate_on_every_prefix(seed):
    candles = random_walk(330, seed=seed)
    rng = np.random.default_rng(seed)
    predictions = pd.Series(rng.normal(0, 0.015, len(candles)), index=candles.index)
    predictions[rng.random(len(candles)) < 0.3] = np.nan
    config = SignalConfig(buy_threshold=0.1)
    series = evaluate_series(candles, config, predictions)
    needed = required_bars(config)
    assert series["score"].iloc[: needed - 1].isna().all()
    assert series["signal"].iloc[: needed - 1].isna().all()
    for t in range(needed - 1, len(candles)):
        predicted = predictions.iloc[t]
        result = evaluate(
            candles.iloc[: t + 1], config=config, predicted_return=None if np.isnan(predicted) else predicted
        )
        row = series.iloc[t]
        assert row["score"] == result.score
        assert row["strength"] == result.strength
        assert row["signal"] == result.signal_type
        assert row["atr"] == result.atr
        for f in result.factors:
            assert row[f"{f.name}_score"] == f.score
        if np.isnan(predicted):
            assert np.isnan(row["prediction_score"])
    assert set(series["signal"].iloc[needed - 1 :]) == {"BUY", "SELL", "HOLD"}


def test_series_accepts_an_aligned_array_of_predictions():
    candles = random_walk(260, seed=5)
    predictions = np.full(len(candles), np.nan)
    predictions[-1] = 0.02
    series = evaluate_series(candles, SignalConfig(), predictions)
    assert series["score"].iloc[-1] == evaluate(candles, predicted_return=0.02).score
    with pytest.raises(ValueError, match="predicted_returns has 3 values"):
        evaluate_series(candles, SignalConfig(), [0.01, 0.02, 0.03])


# --- explanations cite numbers that agree with their words ---------------------------------------------


@pytest.mark.parametrize(
    ("last_volume", "wording"),
    [
        (1040, "volume 1.04x its 20-bar average on an up day: partly confirms buying"),
        (1960, "volume 1.96x its 20-bar average on an up day: partly confirms buying"),
        (2000, "volume 2.0x its 20-bar average on an up day: confirms buying"),
    ],
)
def test_a_volume_ratio_near_a_threshold_is_cited_on_its_side_of_it(last_volume, wording):
    """1.04x read "volume 1.0x its average: partly confirms" (1.0x is no confirmation), 1.96x read "2.0x …
    partly confirms" (2.0x confirms fully)."""
    closes = np.append(zigzag(WARMUP - 1), 103.0)
    candles = from_closes(closes, volumes=[1000] * (WARMUP - 1) + [last_volume])
    assert factor(evaluate(candles), "volume").explanation == wording


def _cited(explanation: str, pattern: str) -> float:
    import re

    return float(re.search(pattern, explanation).group(1))


def test_an_rsi_or_percent_b_near_a_threshold_is_cited_on_its_side_of_it():
    """An RSI of 29.97 read "RSI 30.0 < 30: oversold", 70.03 "RSI 70.0 > 70", a %B of 0.4996 "close in lower
    half of Bollinger bands (%B 0.50)": the number contradicted the words next to it."""
    checked = {"rsi": 0, "bollinger": 0}
    for seed in range(40):
        candles = random_walk(1500, seed=seed, volatility=0.02)
        close = candles["close"].to_numpy()
        rsi = talib.RSI(close, timeperiod=14)
        upper, _, lower = talib.BBANDS(close, timeperiod=20, nbdevup=2, nbdevdn=2)
        percent_b = (close - lower) / (upper - lower)
        near_rsi = np.flatnonzero(
            (np.abs(rsi - 30) < 0.05) | (np.abs(rsi - 70) < 0.05) | (np.abs(rsi - 15) < 0.05)
        )
        near_b = np.flatnonzero(np.abs(percent_b - 0.5) < 0.005)
        for i in [int(i) for i in near_rsi if i >= WARMUP]:
            result = evaluate(candles.iloc[: i + 1])
            words = factor(result, "rsi").explanation
            value = _cited(words, r"RSI ([\d.]+)")
            if "< 30" in words:
                assert value < 30, words
            elif "> 70" in words:
                assert value > 70, words
            else:
                assert 30 <= value <= 70, words
            assert ("deeply oversold" in words) == (value <= 15), words
            checked["rsi"] += 1
        for i in [int(i) for i in near_b if i >= WARMUP][:5]:
            words = factor(evaluate(candles.iloc[: i + 1]), "bollinger").explanation
            value = _cited(words, r"%B ([-\d.]+)")
            if "lower half" in words:
                assert value < 0.5, words
            elif "upper half" in words:
                assert value > 0.5, words
            checked["bollinger"] += 1
    assert checked["rsi"] >= 5 and checked["bollinger"] >= 5  # the walks did come near the thresholds
