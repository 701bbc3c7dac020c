from datetime import UTC, datetime

import pytest
from django.test import Client

from accounts.tests.factories import UserFactory
from predictions.models import TrainedModel
from predictions.tests.factories import TrainedModelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_() -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _model() -> TrainedModel:
    folds = [
        {
            "fold": 1,
            "test_start": "2025-01-01T00:00:00+00:00",
            "mae": 10.5,
            "naive_mae": 12.0,
            "n_samples": 50,
        },
        {
            "fold": 2,
            "test_start": "2025-03-01T00:00:00+00:00",
            "mae": 14.25,
            "naive_mae": 11.0,
            "n_samples": 50,
        },
    ]
    return TrainedModelFactory(
        horizon=5,
        algorithm="random_forest",
        data_start=datetime(2020, 1, 1, tzinfo=UTC),
        data_end=datetime(2025, 6, 1, tzinfo=UTC),
        n_samples=1200,
        metrics={"mae": 12.375, "naive_mae": 11.5, "mae_vs_naive": 1.076, "directional_accuracy": 0.52},
        fold_metrics=folds,
        artifact="models/TCS.NS/1D/h5/random_forest_v1.joblib",
        artifact_sha256="ab" * 32,
    )


def test_trained_model_page_shows_metrics_and_folds_as_tables_with_a_chart(admin_client_):
    model = _model()
    html = admin_client_.get(f"/admin/predictions/trainedmodel/{model.pk}/change/").content.decode()
    assert "<tr><th>mae_vs_naive</th><td>1.076</td></tr>" in html
    assert "<td>14.25</td>" in html and "<th>naive_mae</th>" in html  # the fold table
    assert html.count("<rect") == 4  # model and naive bars for each of the two folds
    assert '{"fold"' not in html and "&quot;fold&quot;" not in html  # no JSON blob
    # The artifact is named, not linked: media files are not served over HTTP.
    assert "random_forest_v1.joblib (sha256 abababababab…)" in html
    assert 'href="/media/' not in html and 'href="models/' not in html


def _action(client: Client, action: str, models: list[TrainedModel]) -> list[str]:
    response = client.post(
        "/admin/predictions/trainedmodel/",
        {"action": action, "_selected_action": [model.pk for model in models]},
        follow=True,
    )
    assert response.status_code == 200
    return [str(message) for message in response.context["messages"]]


def test_activating_two_versions_of_one_model_activates_neither_and_says_why(admin_client_):
    # Both were reported "now active" while only the last one processed was.
    v1, v2 = TrainedModelFactory(), TrainedModelFactory()
    other = TrainedModelFactory(algorithm="random_forest")
    said = _action(admin_client_, "activate", [v1, v2, other])
    assert list(TrainedModel.objects.filter(is_active=True)) == [other]
    assert said == [
        "Not activated: only one version of a model can be active; select one of TCS.NS 1D h1 svr v1, "
        "TCS.NS 1D h1 svr v2.",
        "TCS.NS 1D h1 random_forest v1 is now active",
    ]


def test_retraining_several_versions_of_one_model_trains_it_once(admin_client_, frozen):
    from market.services import candles_sync
    from market.sources import get_provider
    from market.timeframes import Timeframe

    candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
    old = [TrainedModelFactory(), TrainedModelFactory(), TrainedModelFactory(algorithm="random_forest")]
    said = _action(admin_client_, "retrain", old)
    assert len(said) == 1 and said[0].startswith("TCS.NS 1D h1: retraining random_forest, svr: done"), said
    stored = TrainedModel.objects.exclude(pk__in=[m.pk for m in old])
    assert sorted(stored.values_list("algorithm", "version")) == [
        ("ensemble", 1),
        ("random_forest", 2),
        ("svr", 3),
    ]


def test_retraining_a_model_already_being_trained_does_not_train_it_again(admin_client_, frozen):
    from predictions.models import TaskRecord

    # A user's svr training of TCS.NS is queued (an id the result backend has never seen is PENDING).
    queued = TaskRecord.objects.create(
        task_id="queued-training-0400",
        name="predictions.train_models",
        key="train:TCS.NS:1D:1:svr",
        user=None,
    )
    old = TrainedModelFactory()
    said = _action(admin_client_, "retrain", [old])
    assert said == [
        f"TCS.NS 1D h1: retraining svr: not started again, already queued or running as task {queued.task_id}"
    ]
    assert list(TrainedModel.objects.all()) == [old] and TaskRecord.objects.count() == 1


def test_staff_find_the_versions_trained_on_candles_revised_since(admin_client_):
    # The list says when a version's training window was revised and filters on it: those are the ones to
    # select for the Retrain action.
    revised = TrainedModelFactory(data_revised_at=datetime(2026, 6, 3, 11, 30, tzinfo=UTC))
    current = TrainedModelFactory(algorithm="random_forest")
    response = admin_client_.get("/admin/predictions/trainedmodel/?data_revised_at__isempty=0")
    assert response.status_code == 200
    assert [row.pk for row in response.context["cl"].result_list] == [revised.pk]
    assert "Data revised at" in response.content.decode()
    response = admin_client_.get("/admin/predictions/trainedmodel/?data_revised_at__isempty=1")
    assert [row.pk for row in response.context["cl"].result_list] == [current.pk]
