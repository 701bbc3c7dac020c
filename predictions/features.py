"""Model features from candles: pure pandas/TA-Lib, scale-free, and causal (a row uses only data up to its bar).

Every column is expressed without price units (ratios to the close, oscillators, z-scores) so that a model
trained on one price level still applies after the stock has doubled. Warm-up rows are dropped, never filled.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

if TYPE_CHECKING:
    import pandas as pd

MIN_HORIZON = 1
MAX_HORIZON = 30
CANDLE_COLUMNS = ("open", "high", "low", "close", "volume")

RSI_PERIOD = 14
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
BB_PERIOD, BB_DEVIATIONS = 20, 2.0
MA_PERIODS = (10, 20, 50)
ATR_PERIOD = 14
ROC_PERIOD = 10
RETURN_LAGS = 5
ZSCORE_PERIOD = 20

FEATURE_COLUMNS: list[str] = [
    "rsi_14",  # Wilder RSI, 0..100
    "macd_rel",  # MACD line / close
    "macd_signal_rel",  # MACD signal / close
    "macd_hist_rel",  # MACD histogram / close
    "bb_upper_rel",  # upper band / close - 1
    "bb_lower_rel",  # lower band / close - 1
    "bb_pct_b",  # (close - lower) / (upper - lower); 0.5 when the bands collapse
    "bb_width",  # (upper - lower) / middle
    *[f"sma_{p}_rel" for p in MA_PERIODS],  # close / SMA - 1
    *[f"ema_{p}_rel" for p in MA_PERIODS],  # close / EMA - 1
    "atr_14_rel",  # ATR(14) / close
    "roc_10",  # close / close[t-10] - 1
    "log_return",  # log(close / close[t-1])
    *[f"log_return_lag_{k}" for k in range(1, RETURN_LAGS + 1)],
    "volume_z_20",  # 20-bar z-score of volume; 0 when the window is constant (e.g. index with no volume)
    "obv_z_20",  # 20-bar z-score of on-balance volume; 0 when constant
]


def _talib_lookback(name: str, **parameters: float) -> int:
    from talib import abstract

    function = abstract.Function(name)
    function.set_parameters(parameters)
    return int(function.lookback)


@functools.cache
def warmup_bars() -> int:
    """Rows lost to warm-up: the longest lookback of any feature, taken from TA-Lib itself for its indicators.
    A function, not a constant, so that importing this module (a web worker does, for MAX_HORIZON) does not load
    TA-Lib."""
    return max(
        _talib_lookback("RSI", timeperiod=RSI_PERIOD),
        _talib_lookback("MACD", fastperiod=MACD_FAST, slowperiod=MACD_SLOW, signalperiod=MACD_SIGNAL),
        _talib_lookback("BBANDS", timeperiod=BB_PERIOD, nbdevup=BB_DEVIATIONS, nbdevdn=BB_DEVIATIONS),
        *(_talib_lookback("SMA", timeperiod=p) for p in MA_PERIODS),
        *(_talib_lookback("EMA", timeperiod=p) for p in MA_PERIODS),
        _talib_lookback("ATR", timeperiod=ATR_PERIOD),
        _talib_lookback("ROC", timeperiod=ROC_PERIOD),
        1 + RETURN_LAGS,  # a log return needs the previous close, then RETURN_LAGS shifts
        ZSCORE_PERIOD - 1,  # volume and OBV z-scores (OBV itself has no lookback)
    )


def validate_horizon(horizon: int) -> int:
    """Horizons are whole bars between MIN_HORIZON and MAX_HORIZON; anything else is a caller error."""
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)):
        raise ValueError(f"horizon must be an integer, got {horizon!r}")
    if not MIN_HORIZON <= horizon <= MAX_HORIZON:
        raise ValueError(f"horizon must be between {MIN_HORIZON} and {MAX_HORIZON} bars, got {horizon}")
    return int(horizon)


def validate_candles(candles: pd.DataFrame) -> None:
    """Reject frames that break the candle convention; features on them would be silently wrong."""
    import pandas as pd

    missing = [c for c in CANDLE_COLUMNS if c not in candles.columns]
    if missing:
        raise ValueError(f"candles lack columns {missing}")
    if not isinstance(candles.index, pd.DatetimeIndex) or candles.index.tz is None:
        raise ValueError("candles must be indexed by a tz-aware DatetimeIndex")
    if not candles.index.is_monotonic_increasing or not candles.index.is_unique:
        raise ValueError("candle timestamps must be ascending and unique")
    prices = candles[["open", "high", "low", "close"]].to_numpy(dtype="float64")
    if not np.isfinite(prices).all() or (prices <= 0).any():
        raise ValueError("candle prices must be finite and positive")
    volume = candles["volume"].to_numpy(dtype="float64")
    if not np.isfinite(volume).all() or (volume < 0).any():
        raise ValueError("candle volume must be finite and non-negative")


def _rolling_zscore(values: np.ndarray, window: int) -> np.ndarray:
    """Causal z-score over the trailing window (population std); 0 where the window is constant."""
    out = np.full(values.shape, np.nan)
    if len(values) < window:
        return out
    windows = sliding_window_view(values, window)
    mean = windows.mean(axis=1)
    std = windows.std(axis=1)
    flat = std <= 1e-12 * (np.abs(mean) + 1.0)
    out[window - 1 :] = np.where(flat, 0.0, (values[window - 1 :] - mean) / np.where(flat, 1.0, std))
    return out


def compute_features(candles: pd.DataFrame) -> pd.DataFrame:
    """FEATURE_COLUMNS for every bar after the warm-up; each row depends only on candles at or before it."""
    import pandas as pd
    import talib

    validate_candles(candles)
    high = candles["high"].to_numpy(dtype="float64")
    low = candles["low"].to_numpy(dtype="float64")
    close = candles["close"].to_numpy(dtype="float64")
    volume = candles["volume"].to_numpy(dtype="float64")

    features: dict[str, np.ndarray] = {"rsi_14": talib.RSI(close, timeperiod=RSI_PERIOD)}

    macd, signal, hist = talib.MACD(
        close, fastperiod=MACD_FAST, slowperiod=MACD_SLOW, signalperiod=MACD_SIGNAL
    )
    features["macd_rel"] = macd / close
    features["macd_signal_rel"] = signal / close
    features["macd_hist_rel"] = hist / close

    upper, middle, lower = talib.BBANDS(
        close, timeperiod=BB_PERIOD, nbdevup=BB_DEVIATIONS, nbdevdn=BB_DEVIATIONS, matype=talib.MA_Type.SMA
    )
    band = upper - lower
    collapsed = band <= 1e-12 * middle
    features["bb_upper_rel"] = upper / close - 1.0
    features["bb_lower_rel"] = lower / close - 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        features["bb_pct_b"] = np.where(collapsed, 0.5, (close - lower) / np.where(collapsed, 1.0, band))
    features["bb_pct_b"][np.isnan(band)] = np.nan
    features["bb_width"] = band / middle

    for period in MA_PERIODS:
        features[f"sma_{period}_rel"] = close / talib.SMA(close, timeperiod=period) - 1.0
    for period in MA_PERIODS:
        features[f"ema_{period}_rel"] = close / talib.EMA(close, timeperiod=period) - 1.0

    features["atr_14_rel"] = talib.ATR(high, low, close, timeperiod=ATR_PERIOD) / close
    features["roc_10"] = talib.ROC(close, timeperiod=ROC_PERIOD) / 100.0

    log_return = np.full(close.shape, np.nan)
    log_return[1:] = np.diff(np.log(close))
    features["log_return"] = log_return
    for lag in range(1, RETURN_LAGS + 1):
        lagged = np.full(close.shape, np.nan)
        lagged[lag:] = log_return[:-lag]
        features[f"log_return_lag_{lag}"] = lagged

    features["volume_z_20"] = _rolling_zscore(volume, ZSCORE_PERIOD)
    features["obv_z_20"] = _rolling_zscore(talib.OBV(close, volume), ZSCORE_PERIOD)

    frame = pd.DataFrame(features, index=candles.index, columns=FEATURE_COLUMNS)
    # Inputs are validated finite, so the only NaN rows are the warm-up ones (a test pins this to warmup_bars()).
    return frame.dropna()


def make_target(candles: pd.DataFrame, horizon: int) -> pd.Series:
    """log(close[t + horizon] / close[t]); NaN for the last `horizon` rows, whose future is unknown."""
    horizon = validate_horizon(horizon)
    close = candles["close"].astype("float64")
    return np.log(close.shift(-horizon) / close).rename("target")


def build_dataset(candles: pd.DataFrame, horizon: int) -> tuple[pd.DataFrame, pd.Series]:
    """Features and targets on the same, consecutive, NaN-free rows (warm-up and unknown futures removed)."""
    features = compute_features(candles)
    target = make_target(candles, horizon).reindex(features.index)
    known = target.notna().to_numpy()
    return features.loc[known], target.loc[known]
