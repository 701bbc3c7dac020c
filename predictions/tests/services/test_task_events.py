"""Tasks started through the API tell their owner how they are doing (tradingdash.events.TaskUpdated)."""

import pytest
from celery import shared_task

from predictions.models import TaskRecord
from predictions.services import task_announce
from tradingdash import events

pytestmark = pytest.mark.django_db


@pytest.fixture
def announced(announcements):
    return announcements(events.TaskUpdated)


@shared_task(name="predictions.tests.echo")
def echo(value: int) -> int:
    return value


def test_progress_of_a_recorded_task_is_announced_to_its_owner(user, announced):
    TaskRecord.objects.create(task_id="t-1", name="predictions.train_models", key="k", user=user)

    task_announce(task_id="t-1", state="PROGRESS", progress=0.5, stage="training lstm")

    assert announced == [
        events.TaskUpdated(
            task_id="t-1",
            name="predictions.train_models",
            user_id=user.pk,
            state="PROGRESS",
            progress=0.5,
            stage="training lstm",
        )
    ]


def test_tasks_nobody_started_through_the_api_are_not_announced(announced):
    task_announce(task_id="scheduled-1", state="SUCCESS")
    assert announced == []


def test_a_finished_task_announces_its_final_state(user, announced):
    TaskRecord.objects.create(task_id="t-2", name="predictions.tests.echo", key="k2", user=user)

    echo.apply(args=[3], task_id="t-2")

    assert [(e.task_id, e.state, e.progress) for e in announced] == [("t-2", "SUCCESS", 1.0)]
