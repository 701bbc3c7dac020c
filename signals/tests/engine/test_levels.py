import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signals.config import SignalConfig
from signals.levels import compute_levels, pivot_levels
from signals.rules import SignalType, evaluate
from signals.tests.engine.factories import candle_frames, frame

CONFIG = SignalConfig()


def _check_invariants(levels, *, signal_type: str, entry: float) -> None:
    prices = [levels.support, levels.resistance, levels.stop_loss, levels.price_target]
    assert all(p is None or (math.isfinite(p) and p > 0) for p in prices)
    if levels.support is not None:
        assert levels.support < entry
    if levels.resistance is not None:
        assert levels.resistance > entry
    if signal_type == "BUY":
        assert levels.stop_loss < entry < levels.price_target
        if levels.support is not None:
            assert levels.stop_loss < levels.support
    elif signal_type == "SELL":
        assert levels.price_target < entry < levels.stop_loss
        if levels.resistance is not None:
            assert levels.stop_loss > levels.resistance
    else:
        assert levels.stop_loss is None and levels.price_target is None


@settings(max_examples=300, deadline=None)
@given(
    candles=candle_frames(),
    signal_type=st.sampled_from(["BUY", "SELL", "HOLD"]),
    atr_fraction=st.one_of(st.just(0.0), st.floats(1e-6, 20.0)),
    entry_at=st.sampled_from(["close", "high", "low", "mid"]),
)
def test_levels_respect_their_invariants_for_any_valid_candles(candles, signal_type, atr_fraction, entry_at):
    last = candles.iloc[-1]
    entry = float((last["high"] + last["low"]) / 2 if entry_at == "mid" else last[entry_at])
    # atr_fraction up to 20x the price covers tiny-price stocks whose ATR dwarfs the price.
    levels = compute_levels(
        candles, signal_type=signal_type, entry=entry, atr=atr_fraction * entry, config=CONFIG
    )
    _check_invariants(levels, signal_type=signal_type, entry=entry)


SMALL = SignalConfig(
    sma_fast=5, sma_slow=12, ma_cross_lookback=3, macd_fast=3, macd_slow=8, macd_signal=3, pivot_lookback=30
)


@settings(max_examples=150, deadline=None)
@given(candles=candle_frames(min_bars=40, max_bars=70), threshold=st.sampled_from([0.0, 0.1, 0.2]))
def test_evaluate_results_respect_the_level_invariants(candles, threshold):
    config = dataclasses.replace(SMALL, buy_threshold=threshold)
    result = evaluate(candles, config=config)
    entry = result.entry_price
    assert entry == candles["close"].iloc[-1]
    if result.support_level is not None and result.resistance_level is not None:
        assert result.support_level <= entry <= result.resistance_level
    if result.signal_type == SignalType.BUY:
        assert result.stop_loss < entry < result.price_target
    elif result.signal_type == SignalType.SELL:
        assert result.price_target < entry < result.stop_loss
    else:
        assert result.stop_loss is None and result.price_target is None
    prices = [result.support_level, result.resistance_level, result.stop_loss, result.price_target]
    assert all(p is None or (math.isfinite(p) and p > 0) for p in prices)


def _swings():
    """Swing lows at 95 and 96 (one cluster), a swing high at 110, then a close at 100."""
    lows = [99, 98, 97, 95, 97, 98, 99, 99, 98, 97, 96, 97, 98, 99, 99.2, 99.4, 99.6, 99.8, 100, 100.2]
    highs = [
        101,
        100,
        99,
        98,
        100,
        102,
        104,
        106,
        108,
        109,
        110,
        109,
        106,
        104,
        103,
        102.5,
        102,
        101.5,
        101.2,
        101,
    ]
    mids = [(high + low) / 2 for high, low in zip(highs, lows, strict=True)]
    return frame(mids, highs, lows, mids)


def test_support_and_resistance_come_from_clustered_swing_pivots():
    levels = compute_levels(_swings(), signal_type="HOLD", entry=100.0, atr=2.0, config=CONFIG)
    assert levels.support == pytest.approx(95.5)  # 95 and 96 lie within 0.5 ATR: one level at their mean
    assert levels.resistance == pytest.approx(110.0)


def test_buy_stop_sits_below_support_and_target_at_the_first_level_paying_the_reward():
    levels = compute_levels(_swings(), signal_type="BUY", entry=100.0, atr=2.0, config=CONFIG)
    # min(100 - 1.5*2, 95.5 - 0.25*2, 95.5*0.995) = 95.0; risk 5, reward 10, resistance 110 pays exactly that.
    assert levels.stop_loss == pytest.approx(95.0)
    assert levels.price_target == pytest.approx(110.0)


def test_sell_stop_sits_above_resistance_and_target_falls_back_to_risk_reward():
    levels = compute_levels(_swings(), signal_type="SELL", entry=100.0, atr=2.0, config=CONFIG)
    # max(100 + 3, 110*1.005, 110 + 0.5) = 110.55; risk 10.55; no level 21.1 below, so 100 - 21.1.
    assert levels.stop_loss == pytest.approx(110.55)
    assert levels.price_target == pytest.approx(78.9)


def test_buy_target_uses_risk_reward_when_resistance_is_too_close():
    config = SignalConfig(risk_reward=3.0)
    levels = compute_levels(_swings(), signal_type="BUY", entry=100.0, atr=2.0, config=config)
    assert levels.price_target == pytest.approx(115.0)


def test_tiny_price_with_a_huge_atr_keeps_a_positive_stop_and_target():
    candles = frame([0.012, 0.011], [0.02, 0.015], [0.009, 0.008], [0.011, 0.01])
    buy = compute_levels(candles, signal_type="BUY", entry=0.01, atr=0.05, config=CONFIG)
    assert buy.stop_loss == pytest.approx(0.005)  # floored at half the entry
    sell = compute_levels(candles, signal_type="SELL", entry=0.01, atr=0.05, config=CONFIG)
    assert sell.price_target == pytest.approx(0.005)
    assert sell.stop_loss == pytest.approx(0.085)


def test_a_zero_atr_still_keeps_the_stop_off_the_entry():
    candles = frame([100.0] * 10, [100.0] * 10, [100.0] * 10, [100.0] * 10)
    levels = compute_levels(candles, signal_type="BUY", entry=100.0, atr=0.0, config=CONFIG)
    assert levels.stop_loss == pytest.approx(99.5)
    assert levels.price_target == pytest.approx(101.0)


def test_pivots_are_only_levels_once_confirmed_by_later_bars():
    highs = np.array([10, 11, 12, 11, 10, 10, 10, 11, 13, 12], dtype=float)
    lows = highs - 1
    levels = pivot_levels(highs, lows, window=2, tolerance=0.0)
    assert 12.0 in levels  # the high at index 2 has two lower bars on each side
    assert 13.0 not in levels  # the high at index 8 has only one later bar so far
    assert 13.0 in pivot_levels(np.append(highs, 11.0), np.append(lows, 10.0), window=2, tolerance=0.0)
    assert pivot_levels(highs[:3], lows[:3], window=2, tolerance=0.0) == []


def test_invalid_inputs_are_rejected():
    candles = _swings()
    with pytest.raises(ValueError, match="signal_type"):
        compute_levels(candles, signal_type="LONG", entry=100.0, atr=1.0, config=CONFIG)
    with pytest.raises(ValueError, match="entry"):
        compute_levels(candles, signal_type="BUY", entry=0.0, atr=1.0, config=CONFIG)
    with pytest.raises(ValueError, match="atr"):
        compute_levels(candles, signal_type="BUY", entry=100.0, atr=float("nan"), config=CONFIG)
