"""What a failed task tells its owner: our own errors, read back from the result backend (JSON), say why."""

import json
from datetime import UTC, datetime

import pytest
import time_machine

from predictions.models import TaskRecord
from predictions.selectors import task_status
from predictions.tasks import train_models

pytestmark = pytest.mark.django_db


def _failed_prediction(user, task_id: str, *, exc_type: str, message: str) -> TaskRecord:
    """A user's prediction task whose failure the result backend stored as Celery stores it (JSON), raised from
    predictions.services."""
    from django_celery_results.models import TaskResult

    TaskResult.objects.create(
        task_id=task_id,
        status="FAILURE",
        content_type="application/json",
        content_encoding="utf-8",
        result=json.dumps(
            {"exc_type": exc_type, "exc_message": [message], "exc_module": "predictions.services"}
        ),
    )
    return TaskRecord.objects.create(
        task_id=task_id, name="predictions.generate_prediction", key="k", user=user
    )


def test_a_training_without_enough_history_says_so_in_its_status(user):
    # Early in 2000 the (synthetic) provider itself has fewer daily bars than training needs.
    record = TaskRecord.objects.create(task_id="train-1", name=train_models.name, key="k", user=user)
    with time_machine.travel(datetime(2000, 6, 1, 12, tzinfo=UTC), tick=False):
        train_models.apply(
            args=("TCS.NS", "1D"), kwargs={"algorithms": ["svr"]}, task_id="train-1", throw=False
        )
        status = task_status(record=record)
    assert status["state"] == "FAILURE"
    assert status["error"].startswith("Training needs at least") and "are stored" in status["error"]


def test_a_stale_data_failure_stored_before_the_error_moved_to_market_still_says_why(user):
    """StaleMarketData was predictions.services' before market's: a result stored then names that module, and
    Celery rebuilds the error from it (a generic exception when the name is gone: the status hid the reason)."""
    message = "Market data is stale: the last closed 1D bar stored for TCS.NS is the 2026-06-03 bar"
    record = _failed_prediction(user, "predict-old", exc_type="StaleMarketData", message=message)
    assert task_status(record=record)["error"] == message


def test_a_prediction_task_whose_model_cannot_be_used_says_why(user):
    """An LSTM prediction runs in a worker: when its model cannot be loaded (its artifact missing or altered) or
    no longer describes the stored candles, the web request's 503 says why; the task's status said only "the
    task failed", and the user could not know that a retrain (or naive) was the way out."""
    message = (
        "The lstm v2 model of TCS.NS cannot be loaded: its artifact file is missing or unreadable. "
        "Retrain it, or ask for model naive."
    )
    record = _failed_prediction(user, "predict-lstm", exc_type="ModelUnavailable", message=message)
    assert task_status(record=record)["error"] == message
