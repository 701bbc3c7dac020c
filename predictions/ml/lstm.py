"""LSTM over windows of scaled features. The only module that touches TensorFlow/Keras, and only lazily,
so that importing predictions.ml (web workers, migrations) never pays for or depends on TensorFlow."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.preprocessing import StandardScaler

from predictions.ml.base import Forecaster, NotFitted, dump_bundle, load_bundle

PREDICT_BATCH = 1024
MIN_VALIDATION_WINDOWS = 10


def _keras() -> Any:
    import keras

    return keras


def _windows(scaled: np.ndarray, lookback: int) -> np.ndarray:
    """(rows, features) -> (rows - lookback + 1, lookback, features); window i ends at row lookback - 1 + i."""
    return np.ascontiguousarray(sliding_window_view(scaled, lookback, axis=0).transpose(0, 2, 1))


class LstmForecaster(Forecaster):
    """Single LSTM layer + linear output, trained on standardised targets.

    `predict_returns(X)` returns one value per row that has `lookback - 1` rows before it in X, i.e.
    `len(X) - lookback + 1` values for rows `X.index[lookback - 1:]`: pass that much history before the first
    row you want a prediction for. Early stopping watches the last `validation_fraction` of the training
    windows (the most recent ones, never shuffled into training); batches within training are shuffled.
    """

    algorithm = "lstm"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "lookback": 30,
        "units": 32,
        "epochs": 40,
        "batch_size": 32,
        "patience": 5,
        "validation_fraction": 0.15,
        "learning_rate": 1e-3,
        "seed": 42,
    }

    def __init__(self, **params: Any) -> None:
        super().__init__()
        unknown = sorted(set(params) - set(self.DEFAULTS))
        if unknown:
            raise ValueError(f"unknown lstm parameters {unknown}; allowed: {sorted(self.DEFAULTS)}")
        self.params: dict[str, Any] = {**self.DEFAULTS, **params}
        self.lookback = int(self.params["lookback"])
        if self.lookback < 1:
            raise ValueError("lookback must be at least 1")
        self.scaler: StandardScaler | None = None
        self.y_mean = 0.0
        self.y_std = 1.0
        self.model: Any = None
        self._inference: Any = None  # built lazily by _infer(), for the model in self.model

    def fit(self, X: pd.DataFrame, y: pd.Series) -> Self:
        self._check_training_data(X, y)
        keras = _keras()
        features = X.to_numpy(dtype="float64")
        targets = y.to_numpy(dtype="float64")[self.lookback - 1 :]
        n_windows = len(targets)
        n_val = round(n_windows * float(self.params["validation_fraction"]))
        if n_val < MIN_VALIDATION_WINDOWS or n_windows - n_val < MIN_VALIDATION_WINDOWS:
            n_val = 0
        n_train = n_windows - n_val

        # Scaler and target moments come from the rows the training windows see, not the validation tail.
        self.scaler = StandardScaler().fit(features[: n_train + self.lookback - 1])
        self.y_mean = float(targets[:n_train].mean())
        self.y_std = float(targets[:n_train].std()) or 1.0
        windows = _windows(self.scaler.transform(features).astype("float32"), self.lookback)
        scaled_targets = ((targets - self.y_mean) / self.y_std).astype("float32")

        keras.utils.set_random_seed(int(self.params["seed"]))
        model = keras.Sequential(
            [
                keras.Input(shape=(self.lookback, features.shape[1])),
                keras.layers.LSTM(int(self.params["units"])),
                keras.layers.Dense(1),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=float(self.params["learning_rate"])),
            loss="mse",
            jit_compile=False,
        )
        validation = None
        callbacks = []
        if n_val:
            validation = (windows[n_train:], scaled_targets[n_train:])
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=int(self.params["patience"]), restore_best_weights=True
                )
            )
        model.fit(
            windows[:n_train],
            scaled_targets[:n_train],
            validation_data=validation,
            epochs=int(self.params["epochs"]),
            batch_size=int(self.params["batch_size"]),
            shuffle=True,
            callbacks=callbacks,
            verbose=0,
        )
        self.model = model
        self._inference = None
        return self

    def predict_returns(self, X: pd.DataFrame) -> np.ndarray:
        features = self._features(X)
        if self.model is None or self.scaler is None:
            raise NotFitted("lstm forecaster is not fitted")
        windows = _windows(self.scaler.transform(features).astype("float32"), self.lookback)
        infer = self._infer()
        outputs = [
            np.asarray(infer(windows[start : start + PREDICT_BATCH])).reshape(-1)
            for start in range(0, len(windows), PREDICT_BATCH)
        ]
        return np.concatenate(outputs).astype("float64") * self.y_std + self.y_mean

    def _infer(self) -> Any:
        """`model(x, training=False)` as a tf.function over (any batch, lookback, features) float32 windows,
        traced on first use and then reused: an eager call costs tens of milliseconds of Python overhead per
        call, the traced one well under one. Built once per fitted or loaded model, never serialised."""
        if self._inference is None:
            import tensorflow as tf

            model = self.model
            signature = [tf.TensorSpec([None, self.lookback, len(self.feature_columns)], tf.float32)]
            self._inference = tf.function(lambda x: model(x, training=False), input_signature=signature)
        return self._inference

    def hyperparameters(self) -> dict[str, Any]:
        return dict(self.params)

    def to_bytes(self) -> bytes:
        if self.model is None:
            raise NotFitted("lstm forecaster is not fitted")
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "model.keras"
            self.model.save(path)
            keras_bytes = path.read_bytes()
        return dump_bundle(
            {
                "algorithm": self.algorithm,
                "params": self.params,
                "feature_columns": self.feature_columns,
                "scaler": self.scaler,
                "y_mean": self.y_mean,
                "y_std": self.y_std,
                "keras": keras_bytes,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        bundle = load_bundle(data, cls.algorithm)
        keras = _keras()
        forecaster = cls(**bundle["params"])
        forecaster.feature_columns = list(bundle["feature_columns"])
        forecaster.scaler = bundle["scaler"]
        forecaster.y_mean = float(bundle["y_mean"])
        forecaster.y_std = float(bundle["y_std"])
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "model.keras"
            path.write_bytes(bundle["keras"])
            forecaster.model = keras.models.load_model(path, compile=False)
        return forecaster
