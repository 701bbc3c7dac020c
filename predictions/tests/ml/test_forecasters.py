"""Every algorithm trains, predicts one value per complete window, and survives an artifact round trip."""

from __future__ import annotations

import numpy as np
import pytest

from predictions.features import build_dataset
from predictions.ml import registry
from predictions.ml.algorithms import make_forecaster
from predictions.ml.base import NotFitted
from predictions.ml.lstm import LstmForecaster
from predictions.tests.ml.synthetic import FAST_PARAMS, make_candles

ALGORITHMS = list(FAST_PARAMS)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_each_algorithm_trains_and_predicts_finite_returns(trained, candles, algorithm):
    output = trained[algorithm]
    X, _ = build_dataset(candles, 2)
    predicted = output.forecaster.predict_returns(X)
    assert predicted.shape == (len(X) - output.forecaster.lookback + 1,)
    assert np.isfinite(predicted).all()
    assert len(output.forecaster.prediction_index(X)) == len(predicted)
    assert output.evaluation.n_samples > 0 and np.isfinite(output.evaluation.metrics["mae"])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_artifact_round_trip_gives_identical_predictions(trained, candles, algorithm):
    forecaster = trained[algorithm].forecaster
    data = registry.serialize(forecaster)
    loaded = registry.load_verified(algorithm, data, registry.sha256(data))
    X, _ = build_dataset(candles, 2)
    assert type(loaded) is type(forecaster)
    assert loaded.hyperparameters() == forecaster.hyperparameters()
    np.testing.assert_array_equal(loaded.predict_returns(X), forecaster.predict_returns(X))


def test_lstm_returns_one_value_per_row_with_a_full_window(trained, candles):
    forecaster = trained["lstm"].forecaster
    X, _ = build_dataset(candles, 2)
    tail = X.iloc[-25:]
    predicted = forecaster.predict_returns(tail)
    assert forecaster.lookback == 10
    assert len(predicted) == 25 - 10 + 1
    assert list(forecaster.prediction_index(tail)) == list(tail.index[9:])
    # The value for a row depends only on its own window, so a longer history gives the same number.
    np.testing.assert_allclose(predicted[-1], forecaster.predict_returns(X)[-1], rtol=1e-6)
    with pytest.raises(ValueError, match="at least 10 rows"):
        forecaster.predict_returns(X.iloc[-9:])


def test_lstm_scaler_sees_only_rows_before_the_validation_tail(candles):
    X, y = build_dataset(candles, 1)
    forecaster = LstmForecaster(epochs=1, units=4, lookback=10, validation_fraction=0.2).fit(X, y)
    windows = len(X) - 10 + 1
    train_windows = windows - round(windows * 0.2)
    assert forecaster.scaler.n_samples_seen_ == train_windows + 10 - 1
    np.testing.assert_allclose(forecaster.scaler.mean_, X.iloc[: train_windows + 9].mean().to_numpy())


@pytest.mark.parametrize("algorithm", ["random_forest", "svr"])
def test_models_beat_naive_when_returns_are_strongly_autocorrelated(algorithm):
    # With AR(1) coefficient 0.5 yesterday's return predicts today's; a correctly aligned model must find it.
    candles = make_candles(700, seed=5, phi=0.5)
    evaluation = registry.train(algorithm, candles, horizon=1, params=FAST_PARAMS[algorithm]).evaluation
    assert evaluation.metrics["mae_vs_naive"] < 0.95
    assert evaluation.metrics["directional_accuracy"] > 0.6


def test_unknown_hyperparameters_are_refused():
    for algorithm in ALGORITHMS:
        with pytest.raises(ValueError, match="parameters"):
            make_forecaster(algorithm, {"no_such_setting": 1})


@pytest.mark.parametrize("algorithm", ["random_forest", "svr", "lstm"])
def test_unfitted_models_refuse_to_predict_or_serialise(candles, algorithm):
    forecaster = make_forecaster(algorithm, FAST_PARAMS[algorithm])
    X, _ = build_dataset(candles, 1)
    with pytest.raises(NotFitted):
        forecaster.predict_returns(X)
    with pytest.raises(NotFitted):
        forecaster.to_bytes()


def test_artifact_of_another_algorithm_is_refused(trained):
    with pytest.raises(ValueError, match="not a svr model"):
        registry.deserialize("svr", registry.serialize(trained["random_forest"].forecaster))
