"""Features against independent pandas/numpy references, the warm-up count, and the absence of look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from predictions.features import (
    FEATURE_COLUMNS,
    build_dataset,
    compute_features,
    make_target,
    warmup_bars,
)
from predictions.ml.random_forest import RandomForestForecaster
from predictions.tests.ml.synthetic import make_candles


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return make_candles(600, seed=7)


@pytest.fixture(scope="module")
def features(candles: pd.DataFrame) -> pd.DataFrame:
    return compute_features(candles)


def _at(reference: pd.Series, features: pd.DataFrame) -> np.ndarray:
    return reference.reindex(features.index).to_numpy()


def wilder_rsi(close: pd.Series, period: int = 14) -> pd.Series:
    """RSI with Wilder smoothing: seed with the simple mean of the first `period` moves, then recurse."""
    delta = close.diff().to_numpy()
    gain, loss = np.clip(delta, 0, None), np.clip(-delta, 0, None)
    rsi = np.full(len(close), np.nan)
    avg_gain, avg_loss = gain[1 : period + 1].mean(), loss[1 : period + 1].mean()
    rsi[period] = 100 - 100 / (1 + avg_gain / avg_loss)
    for t in range(period + 1, len(close)):
        avg_gain = (avg_gain * (period - 1) + gain[t]) / period
        avg_loss = (avg_loss * (period - 1) + loss[t]) / period
        rsi[t] = 100 - 100 / (1 + avg_gain / avg_loss)
    return pd.Series(rsi, index=close.index)


def sma_seeded_ema(values: pd.Series, period: int) -> pd.Series:
    """EMA seeded with the SMA of its first `period` values (TA-Lib's convention), via pandas ewm."""
    seeded = values.iloc[period - 1 :].copy()
    seeded.iloc[0] = values.iloc[:period].mean()
    return seeded.ewm(span=period, adjust=False).mean().reindex(values.index)


def test_columns_and_warmup_rows_are_exact(candles, features):
    assert list(features.columns) == FEATURE_COLUMNS
    assert warmup_bars() == 49  # the 50-bar SMA/EMA needs 49 earlier bars
    assert len(features) == len(candles) - warmup_bars()
    assert features.index[0] == candles.index[warmup_bars()]
    assert np.isfinite(features.to_numpy()).all()


def test_rsi_matches_independent_wilder_implementation(candles, features):
    np.testing.assert_allclose(
        features["rsi_14"], _at(wilder_rsi(candles["close"]), features), rtol=0, atol=1e-8
    )


@pytest.mark.parametrize("period", [10, 20, 50])
def test_sma_and_ema_ratios_match_pandas(candles, features, period):
    close = candles["close"]
    sma = close.rolling(period).mean()
    ema = sma_seeded_ema(close, period)
    np.testing.assert_allclose(features[f"sma_{period}_rel"], _at(close / sma - 1, features), atol=1e-10)
    np.testing.assert_allclose(features[f"ema_{period}_rel"], _at(close / ema - 1, features), atol=1e-10)


def test_bollinger_matches_rolling_mean_and_population_std(candles, features):
    close = candles["close"]
    middle = close.rolling(20).mean()
    std = close.rolling(20).std(ddof=0)
    upper, lower = middle + 2 * std, middle - 2 * std
    np.testing.assert_allclose(features["bb_upper_rel"], _at(upper / close - 1, features), atol=1e-8)
    np.testing.assert_allclose(features["bb_lower_rel"], _at(lower / close - 1, features), atol=1e-8)
    np.testing.assert_allclose(
        features["bb_pct_b"], _at((close - lower) / (upper - lower), features), atol=1e-6
    )
    np.testing.assert_allclose(features["bb_width"], _at((upper - lower) / middle, features), atol=1e-8)


def test_macd_matches_ewm_once_seeds_have_decayed(candles, features):
    close = candles["close"]
    macd = close.ewm(span=12, adjust=False).mean() - close.ewm(span=26, adjust=False).mean()
    signal = macd.ewm(span=9, adjust=False).mean()
    late = features.index[300:]
    np.testing.assert_allclose(features.loc[late, "macd_rel"], (macd / close)[late], atol=1e-9)
    np.testing.assert_allclose(features.loc[late, "macd_signal_rel"], (signal / close)[late], atol=1e-9)
    np.testing.assert_allclose(
        features.loc[late, "macd_hist_rel"], ((macd - signal) / close)[late], atol=1e-9
    )


def test_atr_matches_wilder_true_range(candles, features):
    high, low, close = candles["high"], candles["low"], candles["close"]
    previous = close.shift(1)
    true_range = pd.concat([high - low, (high - previous).abs(), (low - previous).abs()], axis=1).max(axis=1)
    atr = np.full(len(close), np.nan)
    atr[14] = true_range.iloc[1:15].mean()
    for t in range(15, len(close)):
        atr[t] = (atr[t - 1] * 13 + true_range.iloc[t]) / 14
    np.testing.assert_allclose(
        features["atr_14_rel"], _at(pd.Series(atr, close.index) / close, features), atol=1e-10
    )


def test_returns_lags_and_rate_of_change(candles, features):
    close = candles["close"]
    log_return = np.log(close).diff()
    np.testing.assert_allclose(features["log_return"], _at(log_return, features), atol=1e-12)
    for lag in range(1, 6):
        np.testing.assert_allclose(
            features[f"log_return_lag_{lag}"], _at(log_return.shift(lag), features), atol=1e-12
        )
    np.testing.assert_allclose(features["roc_10"], _at(close / close.shift(10) - 1, features), atol=1e-12)


def test_volume_and_obv_zscores_match_rolling_reference(candles, features):
    volume = candles["volume"].astype(float)
    obv = (np.sign(candles["close"].diff()).fillna(0) * volume).cumsum() + volume.iloc[0]

    def zscore(series: pd.Series) -> pd.Series:
        rolling = series.rolling(20)
        return (series - rolling.mean()) / rolling.std(ddof=0)

    np.testing.assert_allclose(features["volume_z_20"], _at(zscore(volume), features), atol=1e-7)
    np.testing.assert_allclose(features["obv_z_20"], _at(zscore(obv), features), atol=1e-7)


def test_zero_volume_index_gives_zero_scores_not_nan():
    features = compute_features(make_candles(200, seed=3, zero_volume=True))
    assert len(features) == 200 - warmup_bars()
    assert (features["volume_z_20"] == 0).all() and (features["obv_z_20"] == 0).all()
    assert np.isfinite(features.to_numpy()).all()


def test_flat_prices_stay_finite():
    index = pd.bdate_range("2020-01-01", periods=120, tz="UTC", name="timestamp")
    flat = pd.DataFrame(
        {"open": 50.0, "high": 50.0, "low": 50.0, "close": 50.0, "volume": np.zeros(120, dtype="int64")},
        index=index,
    )
    features = compute_features(flat)
    assert len(features) == 120 - warmup_bars()
    assert np.isfinite(features.to_numpy()).all()
    assert (features["bb_pct_b"] == 0.5).all()


def test_rejects_frames_that_break_the_candle_convention(candles):
    with pytest.raises(ValueError, match="tz-aware"):
        compute_features(candles.tz_localize(None))
    with pytest.raises(ValueError, match="ascending"):
        compute_features(candles.iloc[::-1])
    broken = candles.copy()
    broken.iloc[100, broken.columns.get_loc("close")] = np.nan
    with pytest.raises(ValueError, match="finite and positive"):
        compute_features(broken)
    with pytest.raises(ValueError, match="lack columns"):
        compute_features(candles.drop(columns="volume"))


@pytest.mark.parametrize("horizon", [1, 5, 30])
def test_target_is_future_log_return_and_unknown_at_the_end(candles, horizon):
    target = make_target(candles, horizon)
    close = candles["close"].to_numpy()
    np.testing.assert_allclose(target.to_numpy()[:-horizon], np.log(close[horizon:] / close[:-horizon]))
    assert target.iloc[-horizon:].isna().all()


@pytest.mark.parametrize("horizon", [0, 31, 1.5])
def test_target_refuses_out_of_range_horizon(candles, horizon):
    with pytest.raises(ValueError, match="horizon"):
        make_target(candles, horizon)


def test_dataset_is_aligned_and_nan_free(candles):
    X, y = build_dataset(candles, 3)
    assert X.index.equals(y.index)
    assert len(X) == len(candles) - warmup_bars() - 3
    assert X.index[-1] == candles.index[-4]
    assert not X.isna().any().any() and not y.isna().any()


def _perturb_after(candles: pd.DataFrame, t: int, seed: int) -> pd.DataFrame:
    """Scale every row after position t by a random factor (prices and volume), leaving rows <= t intact."""
    rng = np.random.default_rng(seed)
    changed = candles.copy()
    factors = rng.uniform(0.5, 2.0, len(candles) - t - 1)
    for column in ("open", "high", "low", "close"):
        changed.iloc[t + 1 :, changed.columns.get_loc(column)] *= factors
    volume = (changed["volume"].iloc[t + 1 :] * rng.uniform(0.1, 3.0, len(factors))).astype("int64")
    changed.iloc[t + 1 :, changed.columns.get_loc("volume")] = volume
    return changed


@pytest.mark.parametrize("t", [warmup_bars(), 120, 333, 598])
def test_features_at_or_before_t_ignore_everything_after_t(candles, t):
    original = compute_features(candles).loc[: candles.index[t]]
    changed = compute_features(_perturb_after(candles, t, seed=t)).loc[: candles.index[t]]
    assert len(original) == t - warmup_bars() + 1
    pd.testing.assert_frame_equal(original, changed, check_exact=True)


def test_targets_known_at_t_ignore_everything_after_t(candles):
    t, horizon = 400, 5
    _, y_original = build_dataset(candles, horizon)
    _, y_changed = build_dataset(_perturb_after(candles, t, seed=1), horizon)
    known = candles.index[t - horizon]
    pd.testing.assert_series_equal(y_original.loc[:known], y_changed.loc[:known], check_exact=True)


def test_trained_model_prediction_at_t_ignores_everything_after_t(candles):
    t, horizon = 450, 1
    # Train only on what was known at t: targets up to t need closes up to t.
    X_train, y_train = build_dataset(candles.iloc[: t + 1], horizon)
    forecaster = RandomForestForecaster(n_estimators=25, n_jobs=1).fit(X_train, y_train)
    at_t = candles.index[t]
    original = forecaster.predict_returns(compute_features(candles).loc[[at_t]])
    changed = forecaster.predict_returns(compute_features(_perturb_after(candles, t, seed=9)).loc[[at_t]])
    np.testing.assert_array_equal(original, changed)
