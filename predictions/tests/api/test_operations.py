"""Operational behaviour of the predictions API: the predictions counter and in-flight training dedupe."""

import pytest
from prometheus_client import REGISTRY

from market.services import candles_sync
from market.sources import get_provider
from market.timeframes import Timeframe
from predictions.models import TaskRecord
from predictions.services import models_train

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(frozen):
    candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))


def made(model: str) -> float:
    return (
        REGISTRY.get_sample_value("tradingdash_predictions_made_total", {"model": model, "timeframe": "1D"})
        or 0
    )


def test_generating_a_prediction_counts_it(auth_client, history):
    models_train(symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["svr"])
    before = made("svr")
    response = auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json")
    assert response.status_code == 201
    assert made("svr") == before + 1


def test_duplicate_training_in_flight_returns_the_existing_task(staff_client, staff_user, history):
    # Tasks run eagerly here and finish at once; an id the result backend has never seen is PENDING,
    # i.e. a training still queued.
    queued = TaskRecord.objects.create(
        task_id="queued-training-0001",
        name="predictions.train_models",
        key="train:TCS.NS:1D:1:svr",
        user=staff_user,
    )
    response = staff_client.post("/api/predictions/train/TCS", {"algorithms": ["svr"]}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["task_id"] == queued.task_id and body["status"] == "already_running"
    assert body["status_url"].endswith(f"/api/tasks/{queued.task_id}")
    assert TaskRecord.objects.count() == 1


def test_generate_joins_the_same_users_in_flight_training(auth_client, user, history):
    queued = TaskRecord.objects.create(
        task_id="queued-training-0002",
        name="predictions.train_models",
        key="train:TCS.NS:1D:1:svr",
        user=user,
    )
    response = auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["task_id"] == queued.task_id and body["status"] == "already_running"
    assert TaskRecord.objects.count() == 1


def test_a_finished_training_does_not_block_a_new_one(staff_client, history):
    first = staff_client.post("/api/predictions/train/TCS", {"algorithms": ["svr"]}, format="json").json()
    second = staff_client.post("/api/predictions/train/TCS", {"algorithms": ["svr"]}, format="json").json()
    # Tasks run inline here, so each 202 already says the training finished (issue 10: status tells the truth).
    assert first["status"] == second["status"] == "SUCCESS"
    assert first["task_id"] != second["task_id"]
    assert TaskRecord.objects.count() == 2


def test_an_algorithm_named_twice_is_400_not_a_second_training(staff_client, history):
    """["svr", "svr"] trained svr twice (two versions, an ensemble of two copies) under an in-flight key of its
    own, so it also escaped the duplicate-training check for ["svr"]."""
    response = staff_client.post("/api/predictions/train/TCS", {"algorithms": ["svr", "svr"]}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["details"]) == {"algorithms"}
    assert not TaskRecord.objects.exists()


@pytest.fixture
def queued_not_run():
    """Tasks go to the broker (this test run's Redis) and stay queued: no worker runs them."""
    from celery import current_app

    eager = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = False
    yield
    current_app.conf.task_always_eager = eager
    with current_app.connection_for_write() as connection:
        for queue in ("default", "ml"):
            connection.default_channel.queue_purge(queue)


def test_a_prediction_is_not_joined_to_the_same_users_training_that_predicts_nothing(
    staff_client, history, queued_not_run
):
    """A staff user's queued training (POST /train, which makes no prediction) and then their own request for
    an svr prediction: joining that training answered "already_running" with a task whose result never holds
    the prediction, so the status said SUCCESS for a prediction nobody made."""
    training = staff_client.post("/api/predictions/train/TCS", {"algorithms": ["svr"]}, format="json").json()
    assert training["status"] == "queued"
    response = staff_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["task_id"] != training["task_id"]
    assert body["status"] == "waiting_for_training"
    assert TaskRecord.objects.get(task_id=body["task_id"]).kwargs["model"] == "svr"
