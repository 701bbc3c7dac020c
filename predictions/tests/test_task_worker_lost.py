"""A worker lost in the middle of a training (killed, its machine gone) stores nothing more: the result backend
keeps the last progress it reported. Its message was not acknowledged (acks_late), so the broker hands it out
again after the visibility timeout and it starts over. Meanwhile its owner must not read progress that is not
happening, and nobody must start the same training a second time beside the one coming back."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from celery import current_app

from predictions.models import TaskRecord, TrainedModel
from predictions.services import task_in_flight

pytestmark = pytest.mark.django_db

# CELERY_TASK_TIME_LIMIT 30 minutes, visibility timeout 60 minutes (the settings' defaults, set here).
STARTED = datetime(2026, 6, 3, 6, 0, tzinfo=UTC)
KEY = "train:TCS.NS:1D:1:svr"


@pytest.fixture
def limits(settings):
    settings.CELERY_TASK_TIME_LIMIT = 30 * 60
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "visibility_timeout": 3600,
    }


@pytest.fixture
def lost_training(limits, staff_user) -> TaskRecord:
    """A staff member's svr training, started at STARTED and last reporting a third done five minutes later,
    when its worker died."""
    with time_machine.travel(STARTED, tick=False):
        record = TaskRecord.objects.create(
            task_id="lost-training-0300", name="predictions.train_models", key=KEY, user=staff_user
        )
        current_app.backend.store_result(record.task_id, None, "STARTED")
    with time_machine.travel(STARTED + timedelta(minutes=5), tick=False):
        current_app.backend.store_result(
            record.task_id, {"progress": 0.333, "stage": "training svr"}, "PROGRESS"
        )
    return record


def _status(client, record, minutes: float) -> dict:
    with time_machine.travel(STARTED + timedelta(minutes=minutes), tick=False):
        return client.get(f"/api/tasks/{record.task_id}").json()


def test_a_training_whose_worker_was_lost_does_not_claim_progress(staff_client, lost_training):
    running = _status(staff_client, lost_training, 20)
    assert (running["state"], running["progress"], running["stage"]) == ("PROGRESS", 0.333, "training svr")

    # Silent beyond the time limit: a live worker would have ended it (and stored the failure) or reported it.
    lost = _status(staff_client, lost_training, 40)
    assert lost["state"] == "PENDING" and lost["progress"] is None, lost
    assert lost["stage"] == (
        "No worker has reported on this task since 2026-06-03 06:05 UTC (then: training svr): the worker running "
        "it was lost; it is queued to start over when a worker takes it back, by 2026-06-03 07:05 UTC"
    )

    # Never taken back, long after the visibility timeout: no worker is coming back for it.
    gone = _status(staff_client, lost_training, 5 + 60 + 31)
    assert gone["state"] == "FAILURE" and "none has taken it back since" in gone["error"], gone


def test_a_training_taken_back_by_a_worker_reports_its_new_run(staff_client, lost_training):
    with time_machine.travel(STARTED + timedelta(minutes=66), tick=False):
        current_app.backend.store_result(lost_training.task_id, None, "STARTED")
    again = _status(staff_client, lost_training, 70)
    assert again["state"] == "STARTED" and again["error"] is None, again


def test_the_same_training_asked_for_while_a_lost_one_waits_to_be_taken_back_is_joined(
    staff_client, lost_training
):
    # 40 minutes after it was asked for (beyond the time limit), before the broker hands it out again: a second
    # training now would train the same model twice, the redelivered one starting over beside it.
    with time_machine.travel(STARTED + timedelta(minutes=40), tick=False):
        response = staff_client.post("/api/predictions/train/TCS", {"algorithms": ["svr"]}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert (body["task_id"], body["status"], body["state"]) == (
        lost_training.task_id,
        "already_running",
        "PENDING",
    )
    assert TaskRecord.objects.count() == 1 and not TrainedModel.objects.exists()

    with time_machine.travel(STARTED + timedelta(minutes=5 + 60 + 31), tick=False):
        assert task_in_flight(key=KEY) is None  # never taken back: a new request trains


def test_a_training_waiting_to_be_retried_long_after_it_was_asked_for_is_joined(limits, staff_user):
    # Queued at 06:00, run, and retried at 06:45 (the provider was down): still the same training in flight.
    with time_machine.travel(STARTED, tick=False):
        record = TaskRecord.objects.create(
            task_id="retrying-training-0301", name="predictions.train_models", key=KEY, user=staff_user
        )
    with time_machine.travel(STARTED + timedelta(minutes=45), tick=False):
        current_app.backend.store_result(record.task_id, None, "RETRY")
    with time_machine.travel(STARTED + timedelta(minutes=47), tick=False):
        assert task_in_flight(key=KEY) == record
