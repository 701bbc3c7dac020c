"""RBF support vector regression on standardised features and a standardised target."""

from __future__ import annotations

from typing import Any, ClassVar

from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

from predictions.ml.base import SklearnForecaster


class SvrForecaster(SklearnForecaster):
    """The target is standardised on the training rows, so `epsilon` and `C` are in units of the training
    return's standard deviation and mean the same thing for a 1-bar and a 30-bar horizon."""

    algorithm = "svr"
    DEFAULTS: ClassVar[dict[str, Any]] = {"C": 0.5, "epsilon": 0.1, "gamma": "scale"}

    def build_estimator(self) -> TransformedTargetRegressor:
        regressor = Pipeline(
            [
                ("scale", StandardScaler()),
                (
                    "model",
                    SVR(
                        kernel="rbf",
                        C=self.params["C"],
                        epsilon=self.params["epsilon"],
                        gamma=self.params["gamma"],
                    ),
                ),
            ]
        )
        return TransformedTargetRegressor(regressor=regressor, transformer=StandardScaler())
