"""The LSTM predicts through a traced tf.function: same numbers as the eager model call, traced once per model."""

from __future__ import annotations

import numpy as np

from predictions.features import build_dataset
from predictions.ml import registry
from predictions.ml.lstm import _windows


def test_lstm_traced_inference_equals_the_eager_model_call(trained, candles):
    forecaster = trained["lstm"].forecaster
    X, _ = build_dataset(candles, 2)
    features = X[forecaster.feature_columns].to_numpy(dtype="float64")
    windows = _windows(forecaster.scaler.transform(features).astype("float32"), forecaster.lookback)
    eager = np.asarray(forecaster.model(windows, training=False)).reshape(-1).astype("float64")
    expected = eager * forecaster.y_std + forecaster.y_mean
    np.testing.assert_allclose(forecaster.predict_returns(X), expected, rtol=1e-5, atol=1e-8)


def test_lstm_inference_is_traced_once_for_any_batch_size_and_built_anew_after_loading(trained, candles):
    forecaster = trained["lstm"].forecaster
    X, _ = build_dataset(candles, 2)
    data = registry.serialize(forecaster)
    loaded = registry.load_verified("lstm", data, registry.sha256(data))
    assert loaded._inference is None
    for rows in (forecaster.lookback, forecaster.lookback + 5, len(X)):
        loaded.predict_returns(X.iloc[-rows:])
    assert loaded._inference.experimental_get_tracing_count() == 1
