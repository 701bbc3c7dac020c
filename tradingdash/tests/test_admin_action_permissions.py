"""Admin actions that enqueue work or activate a model need the matching model permission, not just is_staff."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.tests.factories import UserFactory
from predictions.models import TaskRecord
from predictions.tests.factories import TrainedModelFactory
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
    model = TrainedModelFactory()
    client = _staff_client("view_trainedmodel")
    client.post("/admin/predictions/trainedmodel/", {"action": "activate", "_selected_action": [model.pk]})
    model.refresh_from_db()
    assert not model.is_active
    client = _staff_client("view_trainedmodel", "change_trainedmodel")
    client.post("/admin/predictions/trainedmodel/", {"action": "activate", "_selected_action": [model.pk]})
    model.refresh_from_db()
    assert model.is_active
    assert not TaskRecord.objects.exists() and not TradingSignal.objects.exists()


def _sync_now(client: Client):
    from market.models import Instrument

    instrument, _ = Instrument.objects.get_or_create(symbol="TCS.NS", defaults={"name": "TCS"})
    response = client.post(
        "/admin/market/instrument/", {"action": "sync_now", "_selected_action": [instrument.pk]}, follow=True
    )
    return response, [(m.level_tag, str(m)) for m in response.context["messages"]] if response.context else []


def test_an_action_whose_task_fails_inline_reports_the_failure_not_a_500(monkeypatch):
    """Without a broker (make run) the task runs inside the action: a provider outage was a 500 page."""
    from market.providers.errors import ProviderUnavailable
    from market.tests.factories import FrameProvider

    down = FrameProvider(fail=ProviderUnavailable("Yahoo answered 503"))
    monkeypatch.setattr("market.services.get_provider", lambda name=None: down)
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response, shown = _sync_now(client)
    assert response.status_code == 200
    [(level, text)] = shown
    assert level == "error" and "TCS.NS: sync" in text and "Yahoo answered 503" in text


@pytest.fixture
def dead_broker():
    """Tasks go to a broker nobody listens on (a closed port), as when Redis is down."""
    from celery import current_app

    conf = current_app.conf
    saved = conf.task_always_eager, conf.broker_url, current_app._pool, current_app.amqp._producer_pool
    conf.task_always_eager, conf.broker_url = False, "redis://127.0.0.1:1/0"
    current_app._pool = current_app.amqp._producer_pool = None
    yield
    conf.task_always_eager, conf.broker_url, current_app._pool, current_app.amqp._producer_pool = saved


def test_an_action_with_the_queue_down_says_so_not_a_500(dead_broker):
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response, shown = _sync_now(client)
    assert response.status_code == 200
    [(level, text)] = shown
    assert level == "error" and "task queue is unavailable" in text
