import dataclasses

import pytest

from signals.config import FACTOR_NAMES, SignalConfig


def test_defaults_are_valid_and_documented_values():
    config = SignalConfig()
    assert (config.rsi_oversold, config.rsi_overbought) == (30.0, 70.0)
    assert config.buy_threshold == 0.2
    assert config.atr_multiple == 1.5
    assert config.risk_reward == 2.0
    assert list(config.weights) == list(FACTOR_NAMES)


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        SignalConfig().buy_threshold = 0.5


def test_from_mapping_applies_overrides_and_coerces_environment_strings():
    config = SignalConfig.from_mapping({"buy_threshold": "0.3", "rsi_period": "21", "volume_weight": 0})
    assert config.buy_threshold == 0.3
    assert config.rsi_period == 21 and isinstance(config.rsi_period, int)
    assert config.volume_weight == 0.0


def test_from_mapping_with_nothing_gives_defaults():
    assert SignalConfig.from_mapping({}) == SignalConfig()
    assert SignalConfig.from_mapping(None) == SignalConfig()


def test_from_mapping_rejects_unknown_keys():
    with pytest.raises(ValueError, match="Unknown signal config keys: buy_treshold"):
        SignalConfig.from_mapping({"buy_treshold": 0.3})


@pytest.mark.parametrize(
    "overrides",
    [
        {"rsi_period": 14.5},
        {"rsi_period": True},
        {"buy_threshold": "high"},
        {"rsi_oversold": 75},
        {"rsi_weight": -0.1},
        {"sma_fast": 200, "sma_slow": 50},
        {"buy_threshold": 1.0},
        {"price_floor_fraction": 1.0},
        {"volume_full_ratio": 1.0},
        {"atr_multiple": float("nan")},
        {"pivot_lookback": 5, "pivot_window": 3},
        {"rsi_weight": 0, "macd_weight": 0, "bollinger_weight": 0, "trend_weight": 0, "volume_weight": 0},
    ],
)
def test_invalid_values_are_rejected(overrides):
    with pytest.raises(ValueError):
        SignalConfig.from_mapping(overrides)
