"""The interface every forecaster implements: fit on features, predict log returns, round-trip through bytes.

joblib is imported by the two functions that use it: a web worker imports this module at start (the prediction
services) but reads an artifact only when it serves a prediction, and joblib at start-up was ~50 modules and
2 MiB of every worker's RSS (bench/README.md, "Web worker RSS")."""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


class NotFitted(RuntimeError):
    """The forecaster was asked to predict or serialise before it was fitted."""


class Forecaster(ABC):
    """A model of the `horizon`-bar log return from one row of features.

    Contract for `predict_returns(X)`: a forecaster needs `lookback` consecutive rows per prediction and returns
    `len(X) - lookback + 1` values; value i belongs to row `X.index[lookback - 1 + i]` (see `prediction_index`).
    Tabular models have lookback 1, i.e. one value per row.
    """

    algorithm: ClassVar[str]
    lookback: int = 1

    def __init__(self) -> None:
        self.feature_columns: list[str] | None = None

    @abstractmethod
    def fit(self, X: pd.DataFrame, y: pd.Series) -> Self:
        """Learn from training rows only; any scaler is fitted here, on these rows."""

    @abstractmethod
    def predict_returns(self, X: pd.DataFrame) -> np.ndarray:
        """Predicted log returns, one per row with a full lookback window (see the class docstring)."""

    @abstractmethod
    def hyperparameters(self) -> dict[str, Any]:
        """The settings this forecaster was built with, JSON-serialisable."""

    @abstractmethod
    def to_bytes(self) -> bytes:
        """A self-contained artifact; `from_bytes` on it predicts exactly like this instance."""

    @classmethod
    @abstractmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Rebuild a fitted forecaster from `to_bytes` output (trusted bytes only: see registry.load_verified)."""

    def prediction_index(self, X: pd.DataFrame) -> pd.Index:
        """The rows of X that `predict_returns(X)` returns values for, in order."""
        return X.index[self.lookback - 1 :]

    def _check_training_data(self, X: pd.DataFrame, y: pd.Series) -> None:
        if len(X) != len(y) or not X.index.equals(y.index):
            raise ValueError("X and y must share the same index")
        if len(X) < self.lookback:
            raise ValueError(f"{self.algorithm} needs at least {self.lookback} training rows, got {len(X)}")
        if not np.isfinite(X.to_numpy(dtype="float64")).all() or not np.isfinite(y.to_numpy()).all():
            raise ValueError("training data must be finite (drop warm-up rows first)")
        self.feature_columns = list(X.columns)

    def _features(self, X: pd.DataFrame) -> np.ndarray:
        """X as a float array in the column order seen at fit time."""
        if self.feature_columns is None:
            raise NotFitted(f"{self.algorithm} forecaster is not fitted")
        missing = [c for c in self.feature_columns if c not in X.columns]
        if missing:
            raise ValueError(f"missing feature columns {missing}")
        if len(X) < self.lookback:
            raise ValueError(f"{self.algorithm} needs at least {self.lookback} rows to predict, got {len(X)}")
        return X[self.feature_columns].to_numpy(dtype="float64")


def dump_bundle(bundle: dict[str, Any]) -> bytes:
    """joblib-serialise a dict of artifacts to bytes."""
    import joblib

    buffer = io.BytesIO()
    joblib.dump(bundle, buffer, compress=3)
    return buffer.getvalue()


def load_bundle(data: bytes, algorithm: str) -> dict[str, Any]:
    """Inverse of dump_bundle, refusing artifacts written by another algorithm."""
    import joblib

    bundle = joblib.load(io.BytesIO(data))
    if not isinstance(bundle, dict) or bundle.get("algorithm") != algorithm:
        found = bundle.get("algorithm") if isinstance(bundle, dict) else type(bundle).__name__
        raise ValueError(f"artifact is not a {algorithm} model (found {found!r})")
    return bundle


class SklearnForecaster(Forecaster):
    """Shared plumbing for scikit-learn estimators: keyword hyperparameters over DEFAULTS, joblib artifacts."""

    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any) -> None:
        super().__init__()
        unknown = sorted(set(params) - set(self.DEFAULTS))
        if unknown:
            raise ValueError(
                f"unknown {self.algorithm} parameters {unknown}; allowed: {sorted(self.DEFAULTS)}"
            )
        self.params: dict[str, Any] = {**self.DEFAULTS, **params}
        self.model: Any = None

    @abstractmethod
    def build_estimator(self) -> Any:
        """A fresh, unfitted estimator (typically a Pipeline) for self.params."""

    def fit(self, X: pd.DataFrame, y: pd.Series) -> Self:
        self._check_training_data(X, y)
        self.model = self.build_estimator().fit(X.to_numpy(dtype="float64"), y.to_numpy(dtype="float64"))
        return self

    def predict_returns(self, X: pd.DataFrame) -> np.ndarray:
        features = self._features(X)
        return np.asarray(self.model.predict(features), dtype="float64")

    def hyperparameters(self) -> dict[str, Any]:
        return dict(self.params)

    def to_bytes(self) -> bytes:
        if self.model is None:
            raise NotFitted(f"{self.algorithm} forecaster is not fitted")
        return dump_bundle(
            {
                "algorithm": self.algorithm,
                "params": self.params,
                "feature_columns": self.feature_columns,
                "model": self.model,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        bundle = load_bundle(data, cls.algorithm)
        forecaster = cls(**bundle["params"])
        forecaster.feature_columns = list(bundle["feature_columns"])
        forecaster.model = bundle["model"]
        return forecaster
