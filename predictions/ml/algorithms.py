"""Which forecaster class implements each algorithm name, resolved on demand so that naming the LSTM
does not import TensorFlow."""

from __future__ import annotations

import importlib
from typing import Any

from predictions.ml.base import Forecaster

# Trainable algorithms (walk-forward evaluated, then fitted on all data).
ALGORITHMS: dict[str, str] = {
    "naive": "predictions.ml.naive:NaiveForecaster",
    "random_forest": "predictions.ml.random_forest:RandomForestForecaster",
    "svr": "predictions.ml.svr:SvrForecaster",
    "lstm": "predictions.ml.lstm:LstmForecaster",
}
# Loadable artifacts: the trainable ones plus the ensemble, which is assembled from trained members.
LOADABLE: dict[str, str] = {**ALGORITHMS, "ensemble": "predictions.ml.ensemble:Ensemble"}


def forecaster_class(algorithm: str) -> type[Forecaster]:
    """The class behind an algorithm name (trainable or ensemble); ValueError for unknown names."""
    try:
        module_name, class_name = LOADABLE[algorithm].split(":")
    except KeyError:
        raise ValueError(f"unknown algorithm {algorithm!r}; choose from {sorted(LOADABLE)}") from None
    return getattr(importlib.import_module(module_name), class_name)


def make_forecaster(algorithm: str, params: dict[str, Any] | None = None) -> Forecaster:
    """A fresh, unfitted forecaster of a trainable algorithm with the given hyperparameters."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; choose from {sorted(ALGORITHMS)}")
    return forecaster_class(algorithm)(**(params or {}))
