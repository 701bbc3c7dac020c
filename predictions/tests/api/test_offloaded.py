"""Through a web worker, a prediction made in the request (scikit-learn or the naive walk-forward, the features'
pandas and TA-Lib, the provider) and the history count a training request checks run in a compute worker
(tradingdash.offload, issue 12's memory budget): the same answers, errors included, as in process. TensorFlow
models still go to the ML queue as a task."""

from datetime import UTC, datetime

import pytest
import time_machine

from market.services import candles_sync
from market.sources import get_provider
from market.tests.stale import LATER
from market.timeframes import Timeframe
from predictions.loading import forecaster_cache_clear
from predictions.models import Prediction, TaskRecord
from predictions.services import models_train
from predictions.tests.factories import TrainedModelFactory
from tradingdash.tests.offloading import in_process

pytestmark = pytest.mark.django_db

PREDICT = "predictions.services:prediction_made_now"
HISTORY = "predictions.services:training_history_available"
# What differs between two predictions made from the same bar by the same model.
OWN = ("id", "created_at")


def answer(response, *, without=()) -> tuple[int, dict]:
    body = response.json()
    return response.status_code, {k: v for k, v in body.items() if k not in without}


@pytest.fixture
def history(frozen):
    candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))


@pytest.fixture
def queued(monkeypatch):
    """Tasks the requests queue, kept from the broker (the compute_worker fixture turns eager tasks off)."""
    sent = []
    from predictions import tasks

    for task in (tasks.train_models, tasks.generate_prediction):
        monkeypatch.setattr(task, "apply_async", lambda *a, task=task, **k: sent.append(task.name))
    return sent


def post(client, body, symbol="TCS"):
    return client.post(f"/api/predictions/generate/{symbol}", body, format="json")


@pytest.mark.parametrize("model", ["svr", "naive", None])
def test_a_prediction_is_made_in_a_compute_worker_with_the_same_201(
    auth_client, history, compute_worker, model
):
    with in_process():  # the test's own setup, not a request
        models_train(symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["svr"])
    body = {"model": model} if model else {}
    offloaded = answer(post(auth_client, body), without=OWN)
    assert compute_worker == [PREDICT]
    assert offloaded[0] == 201, offloaded[1]
    with in_process():
        in_place = answer(post(auth_client, body), without=OWN)
    assert compute_worker == [PREDICT]
    assert offloaded == in_place
    assert Prediction.objects.count() == 2


def test_a_missing_artifact_crosses_as_the_same_503(auth_client, history, compute_worker):
    with in_process():  # the test's own setup, not a request
        trained = models_train(symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["svr"])
    [trained] = [m for m in trained if m.algorithm == "svr"]
    trained.artifact.storage.delete(trained.artifact.name)
    forecaster_cache_clear()
    offloaded = answer(post(auth_client, {"model": "svr"}))
    with in_process():
        in_place = answer(post(auth_client, {"model": "svr"}))
    assert compute_worker == [PREDICT]
    assert offloaded[0] == 503 and offloaded[1]["error"]["code"] == "model_unavailable"
    assert offloaded == in_place


def test_stale_market_data_crosses_as_the_same_503(auth_client, stored_then_provider_down, compute_worker):
    with time_machine.travel(LATER, tick=False):
        offloaded = post(auth_client, {"model": "naive"})
        with in_process():
            in_place = post(auth_client, {"model": "naive"})
    assert compute_worker == [PREDICT]
    assert offloaded.status_code == 503 and offloaded.json()["error"]["code"] == "market_data_stale"
    assert answer(offloaded) == answer(in_place)
    assert offloaded["Retry-After"] == in_place["Retry-After"]
    assert not Prediction.objects.exists()


def test_an_unknown_symbol_crosses_as_the_same_404(auth_client, frozen, compute_worker):
    offloaded = answer(post(auth_client, {"model": "naive"}, symbol="NOSUCHCO"))
    with in_process():
        in_place = answer(post(auth_client, {"model": "naive"}, symbol="NOSUCHCO"))
    assert compute_worker == [PREDICT]
    assert offloaded[0] == 404
    assert offloaded == in_place


def test_too_little_history_to_predict_crosses_as_the_same_422(auth_client, compute_worker):
    # Early in 2000 the (synthetic) provider has too few daily bars for naive's walk-forward.
    with time_machine.travel(datetime(2000, 6, 1, 12, tzinfo=UTC), tick=False):
        offloaded = answer(post(auth_client, {"model": "naive"}))
        with in_process():
            in_place = answer(post(auth_client, {"model": "naive"}))
    assert compute_worker == [PREDICT]
    assert offloaded[0] == 422 and offloaded[1]["error"]["code"] == "insufficient_history"
    assert offloaded == in_place


def test_too_little_history_to_train_is_counted_in_a_compute_worker_with_the_same_422(
    auth_client, compute_worker
):
    with time_machine.travel(datetime(2000, 6, 1, 12, tzinfo=UTC), tick=False):
        offloaded = answer(post(auth_client, {}))
        with in_process():
            in_place = answer(post(auth_client, {}))
    assert compute_worker == [HISTORY]
    assert offloaded[0] == 422 and offloaded[1]["error"]["details"]["needed"] > 0
    assert offloaded == in_place


@pytest.mark.parametrize("url", ["/api/predictions/generate/TCS", "/api/predictions/train/TCS"])
def test_a_training_is_queued_after_counting_in_a_compute_worker_with_the_same_202(
    staff_client, history, compute_worker, queued, url
):
    body = {"model": "random_forest"} if "generate" in url else {"algorithms": ["random_forest"]}
    offloaded = answer(staff_client.post(url, body, format="json"), without=("task_id", "status_url"))
    assert compute_worker == [HISTORY]
    assert offloaded[0] == 202, offloaded[1]
    TaskRecord.objects.all().delete()  # so the second asks afresh instead of joining the first
    with in_process():
        in_place = answer(staff_client.post(url, body, format="json"), without=("task_id", "status_url"))
    assert compute_worker == [HISTORY]
    assert offloaded == in_place
    assert queued == ["predictions.train_models", "predictions.train_models"]


def test_an_lstm_prediction_goes_to_the_ml_queue_not_a_compute_worker(
    auth_client, history, compute_worker, queued
):
    TrainedModelFactory(algorithm="lstm", is_active=True)
    response = post(auth_client, {"model": "lstm"})
    assert response.status_code == 202, response.json()
    assert compute_worker == []
    assert queued == ["predictions.generate_prediction"]


def test_reading_predictions_and_models_is_not_offloaded(auth_client, history, compute_worker):
    for url in ("/api/predictions/TCS", "/api/predictions/models/TCS", "/api/predictions/TCS/accuracy"):
        assert auth_client.get(url).status_code == 200, url
    assert compute_worker == []
