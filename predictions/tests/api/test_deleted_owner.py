"""A user's predictions are theirs alone, also once the user is deleted: they must not turn into the system's."""

import pytest

from accounts.tests.factories import UserFactory
from conftest import _client_for
from predictions.models import Prediction
from predictions.tests.factories import PredictionFactory

pytestmark = pytest.mark.django_db


def test_a_deleted_users_predictions_are_not_shown_to_others_as_the_systems(frozen):
    owner, stranger = UserFactory(), UserFactory()
    system = PredictionFactory(predicted_price=110.0, realized_price=105.0, error=5.0)
    private = PredictionFactory(requested_by=owner, predicted_price=80.0, realized_price=100.5, error=-20.5)
    owner.delete()  # e.g. staff removing the account in admin

    client = _client_for(stranger)
    assert client.get(f"/api/predictions/id/{private.pk}").status_code == 404
    assert [row["id"] for row in client.get("/api/predictions/TCS").json()["results"]] == [system.pk]
    accuracy = client.get("/api/predictions/TCS/accuracy").json()
    assert (accuracy["total"], accuracy["mae"]) == (1, 5.0)  # not the deleted user's miss of 20.5
    assert not Prediction.objects.filter(pk=private.pk, requested_by__isnull=True).exists()


@pytest.fixture
def history(frozen):
    from market.services import candles_sync
    from market.sources import get_provider
    from market.timeframes import Timeframe

    candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))


def test_a_training_whose_owner_is_deleted_still_starts_the_predictions_of_the_users_who_joined_it(
    auth_client, user, history
):
    """The training a deleted user queued is still in the broker and its versions serve everyone: the users
    who joined it must get their predictions when it finishes, not wait until their task EXPIREDs (a day)."""
    from predictions.models import TaskRecord, TrainedModel
    from predictions.tasks import train_models

    owner = UserFactory()
    lead = TaskRecord.objects.create(
        task_id="owner-deleted-0400",
        name="predictions.train_models",
        key="train:TCS.NS:1D:1:svr",
        user=owner,
        kwargs={"then_predict": "svr"},
    )
    mine = auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json").json()
    assert mine["status"] == "waiting_for_training"
    owner_id = owner.pk
    owner.delete()  # e.g. staff removing the account in admin

    waiting = auth_client.get(f"/api/tasks/{mine['task_id']}").json()
    assert waiting["state"] == "PENDING" and waiting["stage"].startswith("waiting for training"), waiting
    # Still the training in flight: another user asking for it joins it rather than training it a second time.
    late = _client_for(UserFactory())
    theirs = late.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json").json()
    assert theirs["status"] == "waiting_for_training", theirs

    result = train_models.apply(
        kwargs={
            "symbol": "TCS.NS",
            "timeframe": "1D",
            "algorithms": ["svr"],
            "then_predict": "svr",
            "user_id": owner_id,
        },
        task_id=lead.task_id,
    ).get()
    assert result["followers_started"] == 2 and "prediction_id" not in result
    assert "deleted" in result["prediction_skipped"]
    status = auth_client.get(f"/api/tasks/{mine['task_id']}").json()
    assert status["state"] == "SUCCESS", status
    assert Prediction.objects.get(pk=status["result"]["prediction_id"]).requested_by == user
    assert late.get(f"/api/tasks/{theirs['task_id']}").json()["state"] == "SUCCESS"
    assert TrainedModel.objects.filter(algorithm="svr").count() == 1  # trained once
    assert not Prediction.objects.filter(
        requested_by__isnull=True
    ).exists()  # none made for the deleted owner


def test_a_deleted_users_own_prediction_tasks_go_with_them(user):
    from predictions.models import TaskRecord

    TaskRecord.objects.create(
        task_id="theirs-0401", name="predictions.generate_prediction", key="k", user=user
    )
    user.delete()
    assert not TaskRecord.objects.filter(task_id="theirs-0401").exists()
