"""Admin actions that enqueue work or activate a model need the matching model permission, not just is_staff."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.tests.factories import UserFactory
from predictions.models import TaskRecord, TrainedModel
from signals.models import TradingSignal

pytestmark = pytest.mark.django_db

ACTIONS = [
    ("/admin/market/instrument/", "sync_now", "market", "view_instrument", "change_instrument"),
    (
        "/admin/predictions/trainedmodel/",
        "activate",
        "predictions",
        "view_trainedmodel",
        "change_trainedmodel",
    ),
    (
        "/admin/predictions/trainedmodel/",
        "retrain",
        "predictions",
        "view_trainedmodel",
        "change_trainedmodel",
    ),
    (
        "/admin/signals/tradingsignal/",
        "generate_watchlist",
        "signals",
        "view_tradingsignal",
        "add_tradingsignal",
    ),
]


def _staff_client(*codenames: str) -> Client:
    user = UserFactory(is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def _offered(client: Client, url: str) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200
    form = response.context["action_form"]  # None when no action is offered at all
    return [] if form is None else [value for value, _ in form.fields["action"].choices]


@pytest.mark.parametrize("url, action, app, view, needed", ACTIONS)
def test_action_needs_its_model_permission(url, action, app, view, needed):
    assert action not in _offered(_staff_client(view), url)
    assert action in _offered(_staff_client(view, needed), url)


def test_staff_without_change_permission_cannot_activate_a_model():
    model = TrainedModel.objects.create(
        symbol="TCS.NS",
        timeframe="1D",
        horizon=1,
        algorithm="svr",
        version=1,
        data_start="2024-01-01T00:00Z",
        data_end="2025-01-01T00:00Z",
        n_samples=1,
        artifact="models/x.joblib",
        artifact_sha256="0" * 64,
    )
    client = _staff_client("view_trainedmodel")
    client.post("/admin/predictions/trainedmodel/", {"action": "activate", "_selected_action": [model.pk]})
    model.refresh_from_db()
    assert not model.is_active
    client = _staff_client("view_trainedmodel", "change_trainedmodel")
    client.post("/admin/predictions/trainedmodel/", {"action": "activate", "_selected_action": [model.pk]})
    model.refresh_from_db()
    assert model.is_active
    assert not TaskRecord.objects.exists() and not TradingSignal.objects.exists()
