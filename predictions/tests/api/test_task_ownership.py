"""Issue 9: a task belongs to whoever is waiting for it; results carry the prediction; training on request is
bounded (catalogue symbols, a daily quota)."""

from datetime import timedelta

import pytest
import time_machine

from accounts.tests.factories import UserFactory
from conftest import _client_for
from market.models import Instrument
from market.services import candles_sync
from market.sources import get_provider
from market.timeframes import Timeframe
from predictions.models import Prediction, TaskRecord, TrainedModel
from predictions.services import prediction_generate
from predictions.tasks import train_models

pytestmark = pytest.mark.django_db


def _queued_svr_training(task_id: str, *, user) -> TaskRecord:
    """A user's svr training of TCS.NS (1D, horizon 1) queued under `task_id`: what a prediction request joins."""
    return TaskRecord.objects.create(
        task_id=task_id, name="predictions.train_models", key="train:TCS.NS:1D:1:svr", user=user
    )


@pytest.fixture
def history(frozen):
    candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))


def test_second_user_gets_their_own_task_and_prediction_from_the_shared_training(auth_client, user, history):
    # Another user's training is queued (an id the result backend has never seen is PENDING).
    other = UserFactory()
    lead = _queued_svr_training("queued-training-0100", user=other)
    response = auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["task_id"] != lead.task_id and body["status"] == "waiting_for_training"
    waiting = auth_client.get(f"/api/tasks/{body['task_id']}")
    assert waiting.status_code == 200
    assert waiting.json()["state"] == "PENDING" and waiting.json()["stage"].startswith("waiting for training")
    assert auth_client.get(f"/api/tasks/{lead.task_id}").status_code == 404

    # The shared training runs (once) and starts the waiting user's prediction under their own task id.
    train_models.apply(
        kwargs={
            "symbol": "TCS.NS",
            "timeframe": "1D",
            "algorithms": ["svr"],
            "then_predict": "svr",
            "user_id": other.pk,
        },
        task_id=lead.task_id,
    )
    status = auth_client.get(f"/api/tasks/{body['task_id']}").json()
    assert status["state"] == "SUCCESS", status
    mine = Prediction.objects.get(pk=status["result"]["prediction_id"])
    assert mine.requested_by == user and mine.model_used == "svr"
    assert status["result"]["prediction"]["id"] == mine.pk
    assert Prediction.objects.filter(requested_by=other).count() == 1
    assert TrainedModel.objects.filter(algorithm="svr").count() == 1  # no duplicate training


def test_follower_reports_the_failure_of_the_training_it_waits_for(auth_client, history):
    lead = _queued_svr_training("failing-training-0101", user=UserFactory())
    body = auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json").json()
    failed = train_models.apply(
        kwargs={"symbol": "TCS.NS", "timeframe": "1D", "algorithms": ["no-such-algorithm"]},
        task_id=lead.task_id,
        throw=False,
    )
    assert failed.state == "FAILURE"
    status = auth_client.get(f"/api/tasks/{body['task_id']}").json()
    assert status["state"] == "FAILURE" and status["error"]


def test_task_result_and_202_carry_the_prediction_like_the_201_body(auth_client, user, history):
    response = auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json")
    assert response.status_code == 202
    body = response.json()
    # Tasks run inline in tests (as in `make run` without Redis): the 202 says it finished, with the result.
    assert body["status"] == "SUCCESS" and body["state"] == "SUCCESS"
    prediction = body["result"]["prediction"]
    created = auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json")
    assert created.status_code == 201
    assert set(prediction) == set(created.json())
    assert auth_client.get(f"/api/tasks/{body['task_id']}").json()["result"]["prediction"] == prediction


def test_prediction_by_id_for_its_owner_and_staff_only(auth_client, staff_client, user, history):
    from predictions.services import models_train

    models_train(symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["svr"])
    created = auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json").json()
    mine = auth_client.get(f"/api/predictions/id/{created['id']}")
    # The prediction as generate showed it (generate adds why that model was used: model, beats_naive, reasons).
    assert mine.status_code == 200 and mine.json() == {key: created[key] for key in mine.json()}
    assert staff_client.get(f"/api/predictions/id/{created['id']}").status_code == 200
    assert _client_for(UserFactory()).get(f"/api/predictions/id/{created['id']}").status_code == 404
    assert auth_client.get("/api/predictions/id/999999").status_code == 404
    assert auth_client.get("/api/predictions/id/99999999999999999999999").status_code == 404
    system = prediction_generate(symbol="TCS.NS", timeframe=Timeframe.D1, model="svr")
    assert _client_for(UserFactory()).get(f"/api/predictions/id/{system.pk}").status_code == 200


def test_non_staff_cannot_train_symbols_outside_the_catalogue(auth_client, staff_client, history):
    Instrument.objects.filter(symbol="TCS.NS").delete()
    response = auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "training_not_allowed"
    assert not TaskRecord.objects.exists()
    assert (
        staff_client.post("/api/predictions/train/TCS", {"algorithms": ["svr"]}, format="json").status_code
        == 202
    )


def test_daily_training_quota_is_429_with_retry_after(auth_client, user, settings, frozen, history):
    settings.TRAINING_QUOTA_PER_DAY = 2
    for n in range(2):
        TaskRecord.objects.create(
            task_id=f"done-{n}", name="predictions.train_models", key=f"train:X{n}:1D:1:svr", user=user
        )
    response = auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "training_quota_exceeded"
    assert 0 < int(response["Retry-After"]) <= 24 * 3600
    assert TaskRecord.objects.count() == 2
    with time_machine.travel(frozen + timedelta(days=1, seconds=1), tick=False):
        assert (
            auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json").status_code
            == 202
        )


def test_list_of_an_unknown_symbol_is_404_like_quote(auth_client, frozen):
    response = auth_client.get("/api/predictions/NOSUCHCO")
    assert response.status_code == 404 and response.json()["error"]["code"] == "symbol_not_found"
    assert auth_client.get("/api/signals/NOSUCHCO").status_code == 404
    assert auth_client.get("/api/predictions/TCS").json() == {"results": []}  # in the catalogue
    assert auth_client.get("/api/signals/TCS").json() == {"results": []}


def test_generate_on_a_symbol_with_too_little_stored_history_fetches_it_first(auth_client, frozen):
    # Only a recent range was ever fetched: generation backfills instead of answering 422.
    candles_sync(symbol="INFY.NS", timeframe=Timeframe.D1, days=30, provider=get_provider("synthetic"))
    response = auth_client.post("/api/predictions/generate/INFY", {"model": "svr"}, format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "SUCCESS"


def test_follower_of_a_revoked_training_reports_it_instead_of_waiting_forever(auth_client, history):
    """An operator who revokes a queued training (celery control revoke) leaves nothing to start the followers'
    predictions: their status must say so, not PENDING "waiting for training" for ever."""
    from celery import current_app

    lead = _queued_svr_training("revoked-training-0102", user=UserFactory())
    body = auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json").json()
    assert body["status"] == "waiting_for_training"
    current_app.backend.mark_as_revoked(lead.task_id, reason="revoked by an operator")
    status = auth_client.get(f"/api/tasks/{body['task_id']}").json()
    assert status["state"] == "REVOKED", status
    assert "cancelled" in status["error"]
    # Nor is it a task "in flight" that the same request would be joined to again.
    from predictions.services import task_in_flight

    assert task_in_flight(key=TaskRecord.objects.get(task_id=body["task_id"]).key) is None


@pytest.mark.parametrize("task_id", ["%00", "abc%00def", "%F0%9F%93%88"])
def test_a_task_id_no_task_can_have_is_404_not_500(auth_client, task_id):
    """Task ids are ours (hex uuids); a NUL byte in the path reached PostgreSQL, which refuses it (a 500)."""
    response = auth_client.get(f"/api/tasks/{task_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_accuracy_counts_only_the_predictions_the_viewer_may_read(auth_client, user):
    """A user's predictions are theirs alone: another user's scored prediction must not show in this user's
    accuracy (its count, hit rate and MAE gave away how many predictions they made and how far off they were)."""
    from predictions.tests.factories import PredictionFactory

    PredictionFactory(requested_by=UserFactory(), realized_price=130.0, error=123.45 - 130.0)
    PredictionFactory(requested_by=user, realized_price=120.0, error=123.45 - 120.0)
    PredictionFactory(realized_price=125.0, error=123.45 - 125.0)  # the system's: public
    body = auth_client.get("/api/predictions/TCS/accuracy").json()
    assert (body["total"], body["scored"]) == (2, 2)
    assert body["mae"] == pytest.approx((3.45 + 1.55) / 2, abs=0.01)


def test_a_task_whose_result_is_no_longer_kept_does_not_claim_to_be_queued(auth_client, user):
    """Celery's result backend is cleaned of results older than result_expires (1 day; beat's
    celery.backend_cleanup): an old task's status then read PENDING, as if it were still queued."""
    from datetime import UTC, datetime

    with time_machine.travel(datetime(2026, 6, 1, 6, 0, tzinfo=UTC), tick=False):
        TaskRecord.objects.create(
            task_id="long-done-0200", name="predictions.generate_prediction", key="k", user=user
        )
    with time_machine.travel(datetime(2026, 6, 3, 6, 0, tzinfo=UTC), tick=False):
        status = auth_client.get("/api/tasks/long-done-0200").json()
    assert status["state"] == "EXPIRED", status
    assert "no longer kept" in status["error"]


def test_a_failed_training_tells_its_followers_owners_on_the_stream(
    auth_client, user, history, announcements
):
    """A follower never runs when its training fails, so nothing announced its end: a dashboard waiting for
    the follower's `task` message on the live stream waited for ever (only polling showed FAILURE)."""
    from tradingdash import events

    updates = announcements(events.TaskUpdated)
    lead = _queued_svr_training("failing-training-0103", user=UserFactory())
    body = auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json").json()
    train_models.apply(
        kwargs={"symbol": "TCS.NS", "timeframe": "1D", "algorithms": ["no-such-algorithm"]},
        task_id=lead.task_id,
        throw=False,
    )
    mine = [u for u in updates if u.task_id == body["task_id"]]
    assert [(u.user_id, u.state) for u in mine] == [(user.pk, "FAILURE")]


def test_a_revoked_training_tells_its_owner_and_its_followers_owners_on_the_stream(
    auth_client, user, announcements
):
    """A revoked task never runs, so task_postrun never announced its end: the owner's dashboard (and those of
    the users following it) waited on the live stream for ever. The worker says so with task_revoked."""
    from types import SimpleNamespace

    from celery.signals import task_revoked

    from tradingdash import events

    updates = announcements(events.TaskUpdated)
    owner = UserFactory()
    lead = _queued_svr_training("revoked-training-0104", user=owner)
    follower = TaskRecord.objects.create(
        task_id="follower-0104", name="predictions.generate_prediction", key="k", user=user, follows=lead
    )
    task_revoked.send(sender=train_models, request=SimpleNamespace(id=lead.task_id), terminated=False,
                      signum=None, expired=False)  # fmt: skip
    assert sorted((u.task_id, u.user_id, u.state) for u in updates) == [
        (follower.task_id, user.pk, "REVOKED"),
        (lead.task_id, owner.pk, "REVOKED"),
    ]
