from datetime import UTC, datetime

import pytest
import time_machine

from accounts.tests.factories import UserFactory
from conftest import _client_for
from market.services import candles_sync
from market.sources import get_provider
from market.timeframes import Timeframe
from predictions.loading import forecaster_cache_clear
from predictions.models import Prediction, TaskRecord, TrainedModel
from predictions.services import models_train, prediction_generate

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(frozen):
    candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))


def test_generate_with_active_model_is_201(auth_client, history):
    models_train(symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["svr"])
    response = auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["model_used"] == "svr" and body["symbol"] == "TCS.NS"
    assert body["lower_bound"] <= body["predicted_price"] <= body["upper_bound"]
    assert 0 <= body["confidence_score"] <= 1


@pytest.mark.parametrize("damage", ["delete", "alter"])
def test_a_model_whose_artifact_is_gone_or_altered_is_a_503_that_says_so(auth_client, history, damage):
    """Its file deleted, or MEDIA_ROOT not shared with the worker that trained it: the request was a 500."""
    [trained] = [
        m
        for m in models_train(symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["svr"])
        if m.algorithm == "svr"
    ]
    if damage == "delete":
        trained.artifact.storage.delete(trained.artifact.name)
    else:
        with trained.artifact.storage.open(trained.artifact.name, "wb") as handle:
            handle.write(b"not the model")
    forecaster_cache_clear()
    response = auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json")
    assert response.status_code == 503, response.content
    error = response.json()["error"]
    assert error["code"] == "model_unavailable" and "svr v1" in error["message"]


def test_generate_without_model_enqueues_training_then_prediction_202(auth_client, user, history):
    response = auth_client.post("/api/predictions/generate/TCS", {"model": "random_forest"}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["status_url"].endswith(f"/api/tasks/{body['task_id']}")
    status = auth_client.get(f"/api/tasks/{body['task_id']}").json()
    assert status["state"] == "SUCCESS" and status["progress"] == 1.0
    prediction = Prediction.objects.get(pk=status["result"]["prediction_id"])
    assert prediction.requested_by == user
    assert TrainedModel.objects.filter(algorithm="random_forest", is_active=True).exists()


def test_task_status_only_for_owner_or_staff(auth_client, staff_client, history):
    task_id = auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json").json()[
        "task_id"
    ]
    stranger = _client_for(UserFactory())
    assert stranger.get(f"/api/tasks/{task_id}").status_code == 404
    assert staff_client.get(f"/api/tasks/{task_id}").status_code == 200
    assert auth_client.get("/api/tasks/no-such-task").status_code == 404


def test_insufficient_history_is_422_with_count(auth_client):
    # Early in 2000 the (synthetic) provider itself has fewer daily bars than training needs.
    with time_machine.travel(datetime(2000, 6, 1, 12, tzinfo=UTC), tick=False):
        response = auth_client.post("/api/predictions/generate/TCS", {}, format="json")
    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert details["needed"] > details["available"] > 0
    assert not TaskRecord.objects.exists()


def test_unknown_symbol_is_404(auth_client, frozen):
    assert auth_client.post("/api/predictions/generate/NOSUCHCO", {}, format="json").status_code == 404


@pytest.mark.parametrize("path", ["NOSUCHCO", "NOSUCHCO/accuracy", "models/NOSUCHCO"])
def test_every_read_of_an_unknown_symbol_is_404(auth_client, frozen, path):
    """A misspelled symbol is named as unknown, not answered with an empty record ("total": 0)."""
    response = auth_client.get(f"/api/predictions/{path}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "symbol_not_found"


@pytest.mark.parametrize("body", [{"horizon": 0}, {"horizon": 31}, {"model": "gpt"}, {"timeframe": "2D"}])
def test_bad_generate_input_is_400(auth_client, body):
    assert auth_client.post("/api/predictions/generate/TCS", body, format="json").status_code == 400


def test_train_is_staff_only(auth_client, staff_client, history):
    assert auth_client.post("/api/predictions/train/TCS", {}, format="json").status_code == 403
    response = staff_client.post("/api/predictions/train/TCS", {"algorithms": ["svr"]}, format="json")
    assert response.status_code == 202


def test_list_models_and_accuracy(auth_client, history):
    models_train(symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["svr"])
    auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json")
    listing = auth_client.get("/api/predictions/TCS?timeframe=1D").json()
    assert len(listing["results"]) == 1 and listing["results"][0]["realized_price"] is None
    models = auth_client.get("/api/predictions/models/TCS").json()["results"]
    svr = next(m for m in models if m["algorithm"] == "svr")
    assert svr["is_active"] and svr["naive"]["mae"] > 0 and svr["metrics"]["mae_vs_naive"] is not None
    accuracy = auth_client.get("/api/predictions/TCS/accuracy").json()
    assert accuracy == {
        "symbol": "TCS.NS",
        "timeframe": "1D",
        "total": 1,
        "scored": 0,
        "hit_rate": None,
        "mae": None,
        "naive_mae": None,
        "mae_vs_naive": None,
        "interval_coverage": None,
    }


def test_list_is_cached_and_invalidated_by_a_new_prediction(auth_client, history):
    models_train(symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["svr"])
    assert auth_client.get("/api/predictions/TCS").json()["results"] == []
    auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json")
    assert len(auth_client.get("/api/predictions/TCS").json()["results"]) == 1


def test_list_cache_is_invalidated_when_a_model_is_activated(auth_client, history):
    from predictions.services import model_activate

    models_train(symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["svr"])
    auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json")
    assert len(auth_client.get("/api/predictions/TCS").json()["results"]) == 1
    Prediction.objects.all().delete()
    assert len(auth_client.get("/api/predictions/TCS").json()["results"]) == 1  # cached
    model_activate(trained=TrainedModel.objects.get(algorithm="svr"))
    assert auth_client.get("/api/predictions/TCS").json()["results"] == []


def test_a_users_prediction_is_listed_to_them_and_staff_only_whoever_filled_the_cache(
    auth_client, user, staff_client, history
):
    system = prediction_generate(symbol="TCS.NS", timeframe=Timeframe.D1, model="naive")
    made = auth_client.post("/api/predictions/generate/TCS", {"model": "naive"}, format="json")
    assert made.status_code == 201, made.content
    mine = made.json()["id"]

    def listed(client):
        return {row["id"] for row in client.get("/api/predictions/TCS").json()["results"]}

    assert listed(auth_client) == {mine, system.pk}  # the owner's list is cached first
    stranger = _client_for(UserFactory())
    assert stranger.get(f"/api/predictions/id/{mine}").status_code == 404
    assert listed(stranger) == {system.pk}
    assert listed(staff_client) == {mine, system.pk}
    assert listed(auth_client) == {mine, system.pk}


def test_lstm_prediction_runs_in_a_worker_task_not_the_request(auth_client, history):
    models_train(symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["lstm"])
    response = auth_client.post("/api/predictions/generate/TCS", {"model": "lstm"}, format="json")
    assert response.status_code == 202
    status = auth_client.get(f"/api/tasks/{response.json()['task_id']}").json()
    assert status["name"] == "predictions.generate_prediction" and status["state"] == "SUCCESS"
    assert Prediction.objects.get(pk=status["result"]["prediction_id"]).model_used == "lstm"


def test_only_tensorflow_models_are_flagged():
    def model(algorithm, members=()):
        return TrainedModel(
            algorithm=algorithm, hyperparameters={"members": [{"algorithm": m} for m in members]}
        )

    assert model("lstm").needs_tensorflow
    assert model("ensemble", ["svr", "lstm"]).needs_tensorflow
    assert not model("ensemble", ["svr", "random_forest"]).needs_tensorflow
    assert not model("ensemble").needs_tensorflow
    assert not model("random_forest").needs_tensorflow


def test_accuracy_counts_only_the_predictions_the_viewer_may_see(auth_client, user, staff_client, frozen):
    from predictions.tests.factories import PredictionFactory

    # The system's prediction (public) hit; the user's own (private) missed by 20 and fell outside its interval.
    PredictionFactory(predicted_price=110.0, realized_price=105.0, error=5.0)
    PredictionFactory(requested_by=user, predicted_price=80.0, realized_price=100.5, error=-20.5)

    def accuracy(client):
        body = client.get("/api/predictions/TCS/accuracy").json()
        return body["total"], body["scored"], body["mae"]

    stranger = _client_for(UserFactory())
    assert accuracy(stranger) == (1, 1, 5.0)  # nothing of another user's private predictions
    assert accuracy(auth_client) == (2, 2, 12.75)
    assert accuracy(staff_client) == (2, 2, 12.75)


def test_accuracy_hit_rate_counts_only_predictions_that_called_a_direction(auth_client, frozen):
    from predictions.tests.factories import PredictionFactory

    # Two naive predictions (price unchanged: no direction called) and one call of a rise that came true.
    PredictionFactory(predicted_price=100.0, realized_price=104.0, error=-4.0)
    PredictionFactory(predicted_price=100.0, realized_price=97.0, error=3.0)
    PredictionFactory(predicted_price=103.0, realized_price=102.0, error=1.0)
    body = auth_client.get("/api/predictions/TCS/accuracy").json()
    assert body["scored"] == 3 and body["mae"] == pytest.approx(8 / 3, abs=0.01)
    assert body["hit_rate"] == 1.0  # not 1/3: a naive prediction is no wrong call


def test_accuracy_hit_rate_is_null_when_no_prediction_called_a_direction(auth_client, frozen):
    from predictions.tests.factories import PredictionFactory

    PredictionFactory(predicted_price=100.0, realized_price=104.0, error=-4.0)
    assert auth_client.get("/api/predictions/TCS/accuracy").json()["hit_rate"] is None  # never 0.0


def test_accuracy_sets_the_mae_beside_naives_on_the_same_predictions(auth_client, frozen):
    """An MAE alone says nothing of skill: 3.0 looks small, yet "no change" from each base price would have
    missed by 2.5 on average over the same predictions. The track record says both, as the models' metrics do."""
    from predictions.tests.factories import PredictionFactory

    PredictionFactory(base_price=100.0, predicted_price=103.0, realized_price=104.0, error=-1.0)
    PredictionFactory(base_price=100.0, predicted_price=96.0, realized_price=101.0, error=-5.0)
    PredictionFactory(base_price=100.0, predicted_price=99.0)  # not matured: in neither
    body = auth_client.get("/api/predictions/TCS/accuracy").json()
    assert (body["scored"], body["mae"], body["naive_mae"]) == (2, 3.0, 2.5)
    assert body["mae_vs_naive"] == 1.2  # worse than naive
