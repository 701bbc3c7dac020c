"""What the predictions API says about models: naive as a default and by name, beats_naive, confidence reasons,
per-fold metrics and the significance of the edge, also for versions stored before those fields existed."""

from datetime import UTC, datetime, timedelta

import pytest

from market.services import candles_sync
from market.sources import get_provider
from market.timeframes import Timeframe
from predictions.models import Prediction, TrainedModel
from predictions.services import models_train
from predictions.tests.factories import TrainedModelFactory, record_default_choice

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(frozen):
    candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))


def _not_beating(model: TrainedModel) -> None:
    TrainedModel.objects.filter(pk=model.pk).update(
        metrics={**model.metrics, "mae_vs_naive": 0.99, "dm_p_value": 0.6}
    )


def test_default_is_naive_and_says_why_when_no_model_beats_naive(auth_client, history):
    svr = models_train(symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["svr"])[0]
    _not_beating(svr)
    TrainedModel.objects.filter(algorithm="ensemble").update(is_active=False)
    response = auth_client.post("/api/predictions/generate/TCS", {}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["model"] == body["model_used"] == "naive"
    assert "no active model beats naive" in body["default_reason"]
    assert body["beats_naive"] is False
    # Naive calls no direction: no confidence, and the reason why, rather than 0.0 next to a price.
    assert body["confidence_score"] is None and "no direction" in body["confidence_reason"]
    assert body["predicted_price"] == body["base_price"]
    assert body["lower_bound"] < body["predicted_price"] < body["upper_bound"]
    assert Prediction.objects.get(pk=body["id"]).trained_models.count() == 0


def test_a_model_named_is_served_and_says_it_does_not_beat_naive(auth_client, history):
    svr = models_train(symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["svr"])[0]
    _not_beating(svr)
    response = auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["model"] == "svr" and body["beats_naive"] is False and body["default_reason"] is None
    assert 0 <= body["confidence_score"] <= 1 and body["confidence_reason"] is None


def test_default_uses_the_model_that_beats_naive(auth_client, history):
    svr = models_train(symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["svr"])[0]
    TrainedModel.objects.filter(pk=svr.pk).update(
        metrics={**svr.metrics, "mae_vs_naive": 0.9, "dm_p_value": 0.02, "directional_accuracy": 0.61}
    )
    record_default_choice(mae_vs_naive=0.955, dm_p_value=0.071, directional_accuracy=0.53, n_samples=321)
    body = auth_client.post("/api/predictions/generate/TCS", {}, format="json").json()
    assert body["model"] == "svr" and body["beats_naive"] is True
    assert body["default_reason"].startswith(f"svr v{svr.version}")
    # What it reports is the choice scored on folds that did not choose it, not svr's own best-of figures.
    assert "0.955" in body["default_reason"] and "p = 0.071" in body["default_reason"]
    assert "0.900" not in body["default_reason"]
    assert body["confidence_score"] == pytest.approx(0.53) and body["confidence_reason"] is None


def test_naive_can_be_asked_for_by_name_without_training(auth_client, history):
    response = auth_client.post("/api/predictions/generate/TCS", {"model": "naive"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["model"] == "naive" and not TrainedModel.objects.exists()


def test_unknown_model_lists_the_valid_choices(auth_client):
    response = auth_client.post("/api/predictions/generate/TCS", {"model": "gpt"}, format="json")
    assert response.status_code == 400
    text = str(response.json())
    for name in ("ensemble", "lstm", "naive", "random_forest", "svr"):
        assert name in text


def test_models_endpoint_shows_folds_significance_and_coverage_by_regime(auth_client, history):
    models_train(symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["svr"])
    models = auth_client.get("/api/predictions/models/TCS").json()["results"]
    svr = next(m for m in models if m["algorithm"] == "svr")
    metrics = svr["metrics"]
    for key in ("dm_stat", "dm_p_value", "coverage_80", "coverage_80_calm", "coverage_80_volatile"):
        assert metrics[key] is not None
    assert svr["beats_naive"] == (metrics["mae_vs_naive"] < 1 and metrics["dm_p_value"] < 0.10)
    folds = svr["fold_metrics"]
    assert len(folds) == metrics["folds"] and sum(f["n"] for f in folds) == metrics["n_samples"]
    for fold in folds:
        assert datetime.fromisoformat(fold["test_start"]) <= datetime.fromisoformat(fold["test_end"])
        assert fold["mae_vs_naive"] == pytest.approx(
            fold["mae"] / fold["naive_mae"], rel=2e-3
        )  # shown to 4 digits
    ensemble = next(m for m in models if m["algorithm"] == "ensemble")
    assert [f["fold"] for f in ensemble["fold_metrics"]] == [1, 2, 3, 4, 5]


def test_models_endpoint_handles_versions_stored_before_these_fields(auth_client):
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    TrainedModelFactory(
        data_start=moment,
        data_end=moment,
        n_samples=300,
        metrics={"mae": 2.0, "naive_mae": 2.1, "mae_vs_naive": 0.95, "coverage_80": 0.8},
        fold_metrics=[
            {"fold": 1, "test_start": moment.isoformat(), "test_end": moment.isoformat(), "mae": 2.0}
        ],
        residual_quantiles={"q10": -0.01, "q90": 0.01},
        is_active=True,
    )
    response = auth_client.get("/api/predictions/models/TCS")
    assert response.status_code == 200
    row = response.json()["results"][0]
    assert row["metrics"]["dm_p_value"] is None and row["metrics"]["coverage_80_calm"] is None
    assert row["beats_naive"] is False  # a lower MAE never tested for luck is not called an edge
    assert row["fold_metrics"][0]["n"] is None and row["fold_metrics"][0]["naive_mae"] is None


def test_a_prediction_made_from_synthetic_candles_says_so(auth_client, history):
    # Generated demo data is never passed off as the market: the candles say `source`, and so does a
    # prediction made from them (made, listed, read by id).
    made = auth_client.post("/api/predictions/generate/TCS", {"model": "naive"}, format="json").json()
    assert made["source"] == "synthetic"
    listed = auth_client.get("/api/predictions/TCS").json()["results"]
    assert [row["source"] for row in listed] == ["synthetic"]
    assert auth_client.get(f"/api/predictions/id/{made['id']}").json()["source"] == "synthetic"


def test_a_model_trained_on_candles_since_replaced_by_another_providers_is_not_served_as_if_they_were_its(
    auth_client, history
):
    # A demo database's models were trained on synthetic candles; the operator then set MARKET_DATA_PROVIDER
    # and the same bars were fetched from the real provider. Those models' walk-forward figures (beats naive,
    # confidence, interval) describe the synthetic random walk, not the market the prediction is made from.
    from market.tests.factories import FrameProvider

    svr = models_train(symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["svr"])[0]
    assert svr.metrics["data_sources"] == ["synthetic"]
    TrainedModel.objects.filter(pk=svr.pk).update(
        metrics={**svr.metrics, "mae_vs_naive": 0.9, "dm_p_value": 0.02, "directional_accuracy": 0.61}
    )
    record_default_choice()
    real = FrameProvider(
        {
            ("TCS.NS", Timeframe.D1): get_provider("synthetic").fetch_candles(
                "TCS.NS", Timeframe.D1, start=svr.data_start, end=svr.data_end + timedelta(days=1)
            )
        }
    )
    candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=real)

    named = auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json")
    assert named.status_code == 503, named.json()
    error = named.json()["error"]
    assert error["code"] == "model_unavailable"
    assert (
        "trained and evaluated on synthetic candles" in error["message"]
        and "now from frame" in error["message"]
    )

    default = auth_client.post("/api/predictions/generate/TCS", {}, format="json")
    assert default.status_code == 201, default.json()
    body = default.json()
    assert body["model"] == "naive" and body["beats_naive"] is False
    assert body["default_reason"].startswith(f"the default would be svr v{svr.version}, but it was trained")
    assert Prediction.objects.get(pk=body["id"]).trained_models.count() == 0
