"""Issue 9: the prediction factor is the system's horizon-1 prediction by the default model (one that beats
naive) from the signal's own bar, never a user's prediction; the backtest says which factors it replays."""

from datetime import UTC, datetime

import pytest
import time_machine

from market.services import candles_sync
from market.sources import get_provider
from market.timeframes import Timeframe
from predictions.loading import forecaster_cache_clear
from predictions.models import Prediction, TrainedModel
from predictions.selectors import model_default
from predictions.services import models_train, prediction_generate
from predictions.tests.factories import record_default_choice
from signals.models import TradingSignal

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 3, 11, 30, tzinfo=UTC)


@pytest.fixture
def svr(user):
    with time_machine.travel(NOW, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
        model = models_train(symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["svr"])[0]
        TrainedModel.objects.exclude(pk=model.pk).update(is_active=False)  # keep only the svr (no ensemble)
        # A user's own predictions, newest of all, at horizon 1 and 5: signals must never use them.
        prediction_generate(symbol="TCS.NS", timeframe=Timeframe.D1, model="svr", user_id=user.pk)
        prediction_generate(symbol="TCS.NS", timeframe=Timeframe.D1, model="svr", horizon=1, user_id=user.pk)
        yield model


def _beats_naive(model: TrainedModel, ratio: float) -> None:
    # Beating naive takes MAE/naive < 1 and a Diebold-Mariano p below 0.10.
    p_value = 0.01 if ratio < 1 else 0.5
    TrainedModel.objects.filter(pk=model.pk).update(
        metrics={**model.metrics, "mae_vs_naive": ratio, "dm_p_value": p_value}
    )
    record_default_choice(beats=ratio < 1)  # and so does choosing it, on the folds that did not choose it


def test_without_a_model_that_beats_naive_the_prediction_factor_is_absent(auth_client, svr):
    _beats_naive(svr, 1.2)
    assert model_default(symbol="TCS.NS", timeframe=Timeframe.D1, horizon=1) is None
    with time_machine.travel(NOW, tick=False):
        body = auth_client.post("/api/signals/generate/TCS", {}, format="json").json()
    assert body["prediction_id"] is None
    assert "prediction" not in {factor["name"] for factor in body["factors"]}
    assert "prediction factor absent" in body["reasoning"] and "redistributed" in body["reasoning"]
    assert sum(factor["contribution"] for factor in body["factors"]) == pytest.approx(body["score"], abs=1e-3)


def test_prediction_factor_is_the_systems_prediction_from_the_signals_bar(auth_client, user, svr):
    _beats_naive(svr, 0.8)
    with time_machine.travel(NOW, tick=False):
        body = auth_client.post("/api/signals/generate/TCS", {}, format="json").json()
        again = auth_client.post("/api/signals/generate/TCS", {}, format="json").json()
    used = Prediction.objects.get(pk=body["prediction_id"])
    assert used.requested_by is None and used.horizon == 1 and used.model_used == "svr"
    assert used.base_timestamp == datetime.fromisoformat(body["candle_timestamp"])
    assert list(used.trained_models.all()) == [svr]
    assert "prediction" in {factor["name"] for factor in body["factors"]}
    assert again["prediction_id"] == used.pk  # one system prediction per bar, reused
    assert not TradingSignal.objects.filter(prediction__requested_by=user).exists()


def test_backtest_says_which_factors_it_replays(auth_client, svr):
    with time_machine.travel(NOW, tick=False):
        body = auth_client.get("/api/signals/TCS/backtest").json()
    assert body["factors_replayed"] == ["rsi", "macd", "bollinger", "trend", "volume"]
    assert set(body["factors_not_replayed"]) == {"prediction"}


@pytest.mark.parametrize("damage", ["delete", "alter"])
def test_a_default_model_whose_artifact_is_gone_or_altered_leaves_the_factor_absent(auth_client, svr, damage):
    # prediction_generate reports an artifact it cannot load as ModelUnavailable; the signal was a 500.
    _beats_naive(svr, 0.8)
    if damage == "delete":
        svr.artifact.storage.delete(svr.artifact.name)
    else:
        with svr.artifact.storage.open(svr.artifact.name, "wb") as handle:
            handle.write(b"not the model")
    forecaster_cache_clear()
    with time_machine.travel(NOW, tick=False):
        response = auth_client.post("/api/signals/generate/TCS", {}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["prediction_id"] is None
    assert "could not predict" in body["reasoning"] and "redistributed" in body["reasoning"]
