"""/health tells the operator the truth about what the API needs beyond the database: its schema migrated, beat
scheduling, a worker consuming every queue (tradingdash/heartbeats.py)."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
import time_machine
from celery.signals import heartbeat_sent, worker_ready
from celery.utils.imports import symbol_by_name
from django.conf import settings as django_settings
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client
from django.utils import timezone
from kombu import Queue

from tradingdash import health, heartbeats
from tradingdash.celery import app
from tradingdash.schedule import BEAT_SCHEDULE

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_process(monkeypatch):
    """Each test is a web, beat or worker process that has not checked or written anything yet."""
    monkeypatch.setattr(health, "_migrated", False, raising=False)
    heartbeats.heartbeats_forget()
    yield
    heartbeats.heartbeats_forget()
    heartbeats.worker_consumer_set(None)


@pytest.fixture
def with_broker(settings):
    """Tasks go to a broker (production): beat and workers are expected."""
    settings.CELERY_TASK_ALWAYS_EAGER = False


class _Consumer:
    """The part of Celery's worker consumer the heartbeat reads: the queues it consumes."""

    def __init__(self, queues: tuple[str, ...]):
        self.task_consumer = SimpleNamespace(queues=[Queue(name) for name in queues])


def _worker_consuming(*queues: str) -> None:
    """What a running worker's main process does: worker_ready once, then Celery's heartbeat every 2 s."""
    worker_ready.send(sender=_Consumer(queues))
    heartbeat_sent.send(sender=None)


def test_migrations_not_applied_is_down_503(api_client):
    """A deploy whose `migrate` did not run (or failed) answered "ok" while the new code's queries failed."""
    latest = MigrationRecorder.Migration.objects.filter(app="market").order_by("-id").first()
    latest.delete()  # rolled back with the test's transaction
    response = api_client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["checks"]["migrations"]["status"] == "pending"
    assert body["checks"]["database"]["status"] == "ok"


def test_all_migrations_applied_is_ok(api_client):
    body = api_client.get("/health").json()
    assert body["checks"]["migrations"]["status"] == "ok" and body["status"] == "ok"


def test_no_beat_and_no_worker_is_degraded(api_client, with_broker):
    """With a broker but no beat (nothing scheduled: syncs, signals, live quotes) and no worker (every queued task
    waits for ever), /health said "ok"."""
    response = api_client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["beat"] == {"status": "down", "age": None, "ms": body["checks"]["beat"]["ms"]}
    assert body["checks"]["workers"]["status"] == "down"
    assert body["checks"]["workers"]["queues"] == {"compute": None, "default": None, "ml": None}


def test_beat_ticking_and_workers_on_every_queue_are_ok(api_client, with_broker):
    heartbeats.beat_alive()
    _worker_consuming("default", "ml", "compute")
    body = api_client.get("/health").json()
    assert body["status"] == "ok", body
    assert body["checks"]["beat"]["status"] == "ok"
    assert body["checks"]["workers"]["status"] == "ok"


def test_a_queue_without_a_worker_is_degraded(api_client, with_broker):
    """Training and LSTM predictions go to `ml`: a worker on `default` only leaves them queued for ever."""
    heartbeats.beat_alive()
    _worker_consuming("default")
    body = api_client.get("/health").json()
    assert body["status"] == "degraded"
    assert body["checks"]["workers"]["status"] == "down"
    assert body["checks"]["workers"]["queues"]["ml"] is None
    assert body["checks"]["workers"]["queues"]["default"] is not None


def test_heartbeats_older_than_a_minute_are_down(api_client, with_broker):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        heartbeats.beat_alive()
        _worker_consuming("default", "ml", "compute")
        assert api_client.get("/health").json()["status"] == "ok"
        clock.shift(timedelta(seconds=heartbeats.STALE_AFTER + 1))
        body = api_client.get("/health").json()
    assert body["status"] == "degraded"
    assert body["checks"]["beat"]["status"] == "down"
    assert body["checks"]["workers"]["status"] == "down"


def test_eager_tasks_need_no_beat_or_worker(api_client):
    """`make run` runs tasks inline by design: no beat or worker is not a fault there."""
    assert django_settings.CELERY_TASK_ALWAYS_EAGER
    body = api_client.get("/health").json()
    assert body["status"] == "ok"
    assert body["checks"]["beat"]["status"] == "eager" and body["checks"]["workers"]["status"] == "eager"


def test_cache_down_leaves_beat_and_workers_unknown(api_client, with_broker, dead_cache):
    body = api_client.get("/health").json()
    assert body["status"] == "degraded" and body["checks"]["cache"]["status"] == "down"
    assert body["checks"]["beat"]["status"] == "unknown" and body["checks"]["workers"]["status"] == "unknown"


@pytest.mark.django_db(transaction=True)
def test_beat_scheduler_tick_is_its_heartbeat(api_client, with_broker):
    app.conf.beat_schedule = {}
    try:
        scheduler = symbol_by_name(django_settings.CELERY_BEAT_SCHEDULER)(app=app)
    finally:
        app.conf.beat_schedule = BEAT_SCHEDULE
    assert heartbeats.beat_age() is None
    scheduler.tick()
    assert heartbeats.beat_age() is not None
    assert api_client.get("/health").json()["checks"]["beat"]["status"] == "ok"


def test_head_answers_like_get(api_client):
    """Uptime monitors and some load balancers check with HEAD: it was 405, so a healthy instance read as down."""
    response = api_client.head("/health")
    assert response.status_code == 200


@pytest.mark.parametrize("method", ["post", "put", "delete", "options"])
def test_other_methods_get_a_json_405(method):
    """They got Django's empty text/html 405 (a POST the CSRF failure page)."""
    response = getattr(Client(enforce_csrf_checks=True), method)("/health")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response.json()["error"]["code"] == "method_not_allowed"
