"""The baseline every model must beat: tomorrow's price is today's price (a log return of 0)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

import numpy as np

from predictions.ml.base import Forecaster, dump_bundle, load_bundle

if TYPE_CHECKING:
    import pandas as pd


class NaiveForecaster(Forecaster):
    """Predicts no change; needs no training, so it also stands in when no model beats it."""

    algorithm = "naive"

    def __init__(self, **params: Any) -> None:
        super().__init__()
        if params:
            raise ValueError(f"naive takes no parameters, got {sorted(params)}")

    def fit(self, X: pd.DataFrame, y: pd.Series) -> Self:
        self._check_training_data(X, y)
        return self

    def predict_returns(self, X: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(X), dtype="float64")

    def hyperparameters(self) -> dict[str, Any]:
        return {}

    def to_bytes(self) -> bytes:
        return dump_bundle({"algorithm": self.algorithm, "feature_columns": self.feature_columns})

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        bundle = load_bundle(data, cls.algorithm)
        forecaster = cls()
        forecaster.feature_columns = bundle["feature_columns"]
        return forecaster
