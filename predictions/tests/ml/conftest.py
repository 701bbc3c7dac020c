"""Trained models shared by the ML tests: each algorithm is walk-forward evaluated and fitted once per session."""

from __future__ import annotations

import pandas as pd
import pytest

from predictions.ml import registry
from predictions.tests.ml.synthetic import FAST_PARAMS, make_candles


@pytest.fixture(scope="session")
def candles() -> pd.DataFrame:
    return make_candles(500, seed=11, phi=0.3)


@pytest.fixture(scope="session")
def trained(candles) -> dict[str, registry.TrainOutput]:
    return {
        algorithm: registry.train(algorithm, candles, horizon=2, params=params)
        for algorithm, params in FAST_PARAMS.items()
    }
