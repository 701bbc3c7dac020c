"""Random forest on the feature row: robust to unscaled, correlated features, so no scaler is needed."""

from __future__ import annotations

from typing import Any, ClassVar, Self

import pandas as pd
from sklearn.ensemble import RandomForestRegressor
from sklearn.pipeline import Pipeline

from predictions.ml.base import SklearnForecaster


class RandomForestForecaster(SklearnForecaster):
    """Shallow trees with large leaves: returns are mostly noise, and deep trees would memorise it."""

    algorithm = "random_forest"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "n_estimators": 200,
        "max_depth": 8,
        "min_samples_leaf": 5,
        "max_features": 0.5,
        "n_jobs": -1,
        "random_state": 42,
    }

    def build_estimator(self) -> Pipeline:
        return Pipeline([("model", RandomForestRegressor(**self.params))])

    def fit(self, X: pd.DataFrame, y: pd.Series) -> Self:
        super().fit(X, y)
        # Parallel training only: thread start-up costs more than walking the trees for the few rows we predict.
        self.model.set_params(model__n_jobs=1)
        return self
