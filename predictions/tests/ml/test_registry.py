"""Registry: training output, forecasts from the latest candles, artifact integrity, promotion, ensemble."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from predictions.features import build_dataset, compute_features, warmup_bars
from predictions.ml import registry
from predictions.ml.ensemble import Ensemble
from predictions.ml.evaluation import Evaluation, InsufficientHistory

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_importing_ml_modules_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "import predictions.features, predictions.ml, predictions.ml.registry, predictions.ml.evaluation\n"
        "import predictions.ml.base, predictions.ml.naive, predictions.ml.random_forest, predictions.ml.svr\n"
        "import predictions.ml.ensemble, predictions.ml.algorithms, predictions.ml.lstm\n"
        "from predictions.ml.registry import ALGORITHMS\n"
        "assert 'lstm' in ALGORITHMS\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_train_output_describes_the_final_fit(trained, candles):
    output = trained["svr"]
    X, _ = build_dataset(candles, 2)
    assert output.algorithm == "svr" and output.horizon == 2
    assert output.n_samples == len(X) == len(candles) - warmup_bars() - 2
    assert output.feature_columns == list(X.columns)
    assert output.hyperparameters == output.forecaster.hyperparameters()
    assert output.data_start == candles.index[0] and output.data_end == candles.index[-1]
    assert output.evaluation.n_samples < output.n_samples


@pytest.mark.parametrize("algorithm", ["naive", "random_forest", "svr", "lstm"])
def test_forecast_from_the_latest_candle(trained, candles, algorithm):
    output = trained[algorithm]
    quantiles = output.evaluation.residual_quantiles
    forecast = registry.predict(output.forecaster, candles, horizon=2, residual_quantiles=quantiles)
    assert forecast.base_time == candles.index[-1].to_pydatetime()
    assert forecast.base_price == candles["close"].iloc[-1]
    assert forecast.predicted_price == pytest.approx(
        forecast.base_price * math.exp(forecast.predicted_return)
    )
    # Locally adaptive: the scaled residual quantiles times the volatility known at the latest candle.
    volatility = compute_features(candles)["atr_14_rel"].iloc[-1]
    assert forecast.lower == pytest.approx(
        forecast.predicted_price * math.exp(quantiles["scaled_q10"] * volatility)
    )
    assert forecast.upper == pytest.approx(
        forecast.predicted_price * math.exp(quantiles["scaled_q90"] * volatility)
    )
    assert forecast.lower < forecast.predicted_price < forecast.upper
    # Features from the recent tail match features from the full history, so the prediction does too.
    full = output.forecaster.predict_returns(compute_features(candles))[-1]
    assert forecast.predicted_return == pytest.approx(full, rel=1e-6, abs=1e-9)


def test_forecast_needs_enough_history(trained, candles):
    forecaster = trained["lstm"].forecaster
    with pytest.raises(InsufficientHistory):
        registry.predict(
            forecaster,
            candles.iloc[: warmup_bars() + 5],
            horizon=1,
            residual_quantiles={"q10": -0.01, "q90": 0.01},
        )


def test_tampered_artifact_is_refused(trained):
    data = registry.serialize(trained["random_forest"].forecaster)
    digest = registry.sha256(data)
    assert len(digest) == 64
    with pytest.raises(registry.ArtifactIntegrityError):
        registry.load_verified("random_forest", data[:-1] + bytes([data[-1] ^ 1]), digest)
    with pytest.raises(registry.ArtifactIntegrityError):
        registry.load_verified("random_forest", data, "0" * 64)
    assert registry.load_verified("random_forest", data, digest.upper()).algorithm == "random_forest"


def test_promotion_needs_mae_no_worse_than_active_on_the_same_rows():
    assert registry.should_promote({"mae": 1.2}, None)
    assert registry.should_promote({"mae": 1.0, "n_samples": 50}, {"mae": 1.0, "n_samples": 50})
    assert registry.should_promote({"mae": 0.9, "n_samples": 50}, {"mae": 1.0, "n_samples": 50})
    assert not registry.should_promote({"mae": 1.1, "n_samples": 50}, {"mae": 1.0, "n_samples": 50})
    assert not registry.should_promote({"mae": None, "n_samples": 50}, {"mae": 1.0, "n_samples": 50})
    assert not registry.should_promote({"mae": float("nan")}, None)
    with pytest.raises(ValueError, match="same rows"):
        registry.should_promote({"mae": 0.9, "n_samples": 50}, {"mae": 1.0, "n_samples": 70})


def test_confidence_is_walk_forward_directional_accuracy(trained):
    evaluation = trained["random_forest"].evaluation
    assert registry.confidence_from(evaluation) == evaluation.metrics["directional_accuracy"]
    assert 0.0 <= registry.confidence_from(evaluation) <= 1.0


def _evaluation(mae: float, naive_mae: float, dm_p_value: float | None = 0.01) -> Evaluation:
    start, end = datetime(2020, 1, 1, tzinfo=UTC), datetime(2022, 1, 1, tzinfo=UTC)
    metrics = {"mae": mae, "naive_mae": naive_mae, "mae_vs_naive": mae / naive_mae, "dm_p_value": dm_p_value}
    return Evaluation(
        algorithm="x",
        horizon=2,
        metrics=metrics,
        fold_metrics=[],
        residual_quantiles={"q10": -0.01, "q90": 0.01},
        n_samples=100,
        data_start=start,
        data_end=end,
    )


def test_ensemble_is_naive_when_no_model_beats_naive(trained, candles):
    ensemble = Ensemble.from_candidates(
        [
            (trained["random_forest"].forecaster, _evaluation(1.10, 1.0)),
            (trained["svr"].forecaster, _evaluation(1.00, 1.0)),
            # A lower MAE that could be luck (Diebold–Mariano p >= 0.10) does not beat naive either.
            (trained["lstm"].forecaster, _evaluation(0.95, 1.0, dm_p_value=0.4)),
            (trained["naive"].forecaster, _evaluation(1.00, 1.0)),
        ]
    )
    assert ensemble.is_naive and ensemble.members == []
    assert "naive" in ensemble.description
    X, _ = build_dataset(candles, 2)
    assert not ensemble.predict_returns(X).any()
    restored = registry.deserialize("ensemble", registry.serialize(ensemble))
    assert restored.is_naive


def test_ensemble_weights_members_by_inverse_mae(trained, candles):
    rf, svr, lstm = (trained[a].forecaster for a in ("random_forest", "svr", "lstm"))
    ensemble = Ensemble.from_candidates(
        [(rf, _evaluation(0.5, 1.0)), (svr, _evaluation(1.5, 1.0)), (lstm, _evaluation(0.9, 1.0))]
    )
    weights = {m.algorithm: w for m, w in ensemble.members}
    assert set(weights) == {"random_forest", "lstm"}  # svr did not beat naive
    assert weights["random_forest"] == pytest.approx((1 / 0.5) / (1 / 0.5 + 1 / 0.9))
    assert ensemble.lookback == lstm.lookback

    X, _ = build_dataset(candles, 2)
    count = len(X) - lstm.lookback + 1
    expected = weights["random_forest"] * rf.predict_returns(X)[-count:] + weights[
        "lstm"
    ] * lstm.predict_returns(X)
    combined = ensemble.predict_returns(X)
    np.testing.assert_allclose(combined, expected, rtol=1e-12)

    data = registry.serialize(ensemble)
    restored = registry.load_verified("ensemble", data, registry.sha256(data))
    np.testing.assert_array_equal(restored.predict_returns(X), combined)
    forecast = registry.predict(ensemble, candles, horizon=2, residual_quantiles={"q10": -0.02, "q90": 0.02})
    latest = ensemble.predict_returns(compute_features(candles))[-1]
    assert forecast.predicted_return == pytest.approx(latest, rel=1e-6)
