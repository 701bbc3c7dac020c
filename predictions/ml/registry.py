"""Train, evaluate, predict with and (de)serialise forecasters: pure computation, no ORM.

Every figure that describes a trained model comes from its walk-forward Evaluation, never from the final fit.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from predictions.features import (
    FEATURE_COLUMNS,
    build_dataset,
    compute_features,
    validate_horizon,
    warmup_bars,
)
from predictions.ml.algorithms import ALGORITHMS, forecaster_class, make_forecaster
from predictions.ml.base import Forecaster
from predictions.ml.evaluation import (
    MIN_FOLDS,
    VOLATILITY_COLUMN,
    Evaluation,
    InsufficientHistory,
    walk_forward,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ALGORITHMS",
    "ArtifactIntegrityError",
    "Forecast",
    "TrainOutput",
    "confidence_from",
    "deserialize",
    "load_verified",
    "predict",
    "serialize",
    "sha256",
    "should_promote",
    "train",
]

# Bars beyond the warm-up fed to compute_features at prediction time, so that the recursive indicators
# (EMA, RSI, ATR, MACD) have forgotten their seed and match the values the model was trained on.
SETTLE_BARS = 250


class ArtifactIntegrityError(Exception):
    """A stored model artifact does not match its recorded SHA-256; it must not be unpickled."""


@dataclass(frozen=True, kw_only=True)
class TrainOutput:
    """A forecaster fitted on all usable rows, with the walk-forward evaluation that describes it."""

    algorithm: str
    horizon: int
    forecaster: Forecaster
    evaluation: Evaluation
    feature_columns: list[str]
    hyperparameters: dict[str, Any]
    n_samples: int
    data_start: datetime
    data_end: datetime


@dataclass(frozen=True, kw_only=True)
class Forecast:
    """The close `horizon` bars after base_time, with an 80% interval from out-of-sample residuals."""

    algorithm: str
    horizon: int
    base_time: datetime
    base_price: float
    predicted_return: float
    predicted_price: float
    lower: float
    upper: float


def train(
    algorithm: str,
    candles: pd.DataFrame,
    *,
    horizon: int = 1,
    params: dict[str, Any] | None = None,
    folds: int = MIN_FOLDS,
    min_train: int | None = None,
) -> TrainOutput:
    """Walk-forward evaluate `algorithm` on candles, then fit it on every row with a known target."""
    horizon = validate_horizon(horizon)
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; choose from {sorted(ALGORITHMS)}")
    evaluation = walk_forward(
        candles, algorithm, horizon=horizon, folds=folds, min_train=min_train, params=params
    )
    X, y = build_dataset(candles, horizon)
    forecaster = make_forecaster(algorithm, params).fit(X, y)
    return TrainOutput(
        algorithm=algorithm,
        horizon=horizon,
        forecaster=forecaster,
        evaluation=evaluation,
        feature_columns=list(FEATURE_COLUMNS),
        hyperparameters=forecaster.hyperparameters(),
        n_samples=len(X),
        data_start=candles.index[0].to_pydatetime(),
        data_end=candles.index[-1].to_pydatetime(),
    )


def predict(
    forecaster: Forecaster,
    candles: pd.DataFrame,
    *,
    horizon: int,
    residual_quantiles: Mapping[str, float],
) -> Forecast:
    """Forecast from the last candle, using only the most recent warmup_bars() + lookback + SETTLE_BARS rows.

    The interval applies the walk-forward residual quantiles in log space: price * exp(return + q). With
    volatility-scaled quantiles ("scaled_q10"/"scaled_q90", locally adaptive conformal) q is the scaled
    quantile times the volatility of the latest row; models stored before those existed use "q10"/"q90".
    """
    horizon = validate_horizon(horizon)
    adaptive = "scaled_q10" in residual_quantiles and "scaled_q90" in residual_quantiles
    prefix = "scaled_" if adaptive else ""
    q10, q90 = float(residual_quantiles[f"{prefix}q10"]), float(residual_quantiles[f"{prefix}q90"])
    if not q10 <= q90:
        raise ValueError("residual quantiles must satisfy q10 <= q90")
    warmup = warmup_bars()
    if len(candles) < warmup + forecaster.lookback:
        raise InsufficientHistory(
            f"{forecaster.algorithm} needs {warmup + forecaster.lookback} candles, got {len(candles)}"
        )
    recent = candles.iloc[-(warmup + forecaster.lookback + SETTLE_BARS) :]
    features = compute_features(recent)
    if len(features) < forecaster.lookback or features.index[-1] != candles.index[-1]:
        raise InsufficientHistory("the latest candle has no complete feature row")
    predicted_return = float(forecaster.predict_returns(features.iloc[-forecaster.lookback :])[-1])
    if adaptive:
        volatility = max(float(features[VOLATILITY_COLUMN].iloc[-1]), 1e-8)
        q10, q90 = q10 * volatility, q90 * volatility
    base_price = float(candles["close"].iloc[-1])
    return Forecast(
        algorithm=forecaster.algorithm,
        horizon=horizon,
        base_time=candles.index[-1].to_pydatetime(),
        base_price=base_price,
        predicted_return=predicted_return,
        predicted_price=base_price * math.exp(predicted_return),
        lower=base_price * math.exp(predicted_return + q10),
        upper=base_price * math.exp(predicted_return + q90),
    )


def serialize(forecaster: Forecaster) -> bytes:
    """The artifact to store; record sha256() of it alongside."""
    return forecaster.to_bytes()


def deserialize(algorithm: str, data: bytes) -> Forecaster:
    """Rebuild a forecaster (any algorithm, or "ensemble"). Unpickles: only for bytes from load_verified."""
    return forecaster_class(algorithm).from_bytes(data)


def sha256(data: bytes) -> str:
    """Hex SHA-256 of an artifact."""
    return hashlib.sha256(data).hexdigest()


def load_verified(algorithm: str, data: bytes, expected_sha256: str) -> Forecaster:
    """Deserialise only if the artifact's hash matches the recorded one, since loading runs pickle."""
    if not hmac.compare_digest(sha256(data), expected_sha256.strip().lower()):
        raise ArtifactIntegrityError(f"{algorithm} artifact does not match its recorded SHA-256")
    return deserialize(algorithm, data)


def confidence_from(evaluation: Evaluation) -> float | None:
    """Confidence means one thing: the walk-forward directional accuracy (0-1), i.e. the out-of-sample share
    of moves whose direction the model called right. None when it is undefined (the price never moved, or the
    model never calls a direction)."""
    value = evaluation.metrics.get("directional_accuracy")
    return None if value is None else float(value)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float, np.floating)) and math.isfinite(value)


def should_promote(new_metrics: Mapping[str, Any], active_metrics: Mapping[str, Any] | None) -> bool:
    """Promote a new model when its walk-forward MAE is no worse than the active model's (or none is active).

    Both must be measured on the same rows (comparison.evaluate_config re-runs the active configuration on the
    new version's folds): rupee MAEs from different windows do not compare.
    """
    if active_metrics is not None and new_metrics.get("n_samples") != active_metrics.get("n_samples"):
        raise ValueError("promotion compares walk-forward errors on the same rows only")
    new_mae = new_metrics.get("mae")
    if not _finite(new_mae):
        return False
    if active_metrics is None or not _finite(active_metrics.get("mae")):
        return True
    return float(new_mae) <= float(active_metrics["mae"])
