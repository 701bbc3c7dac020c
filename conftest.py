import pytest
import structlog
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from tradingdash import events
from tradingdash.cache import local_caches_clear


@pytest.fixture(autouse=True, scope="session")
def _uncached_loggers():
    """structlog's capture_logs cannot see a logger that cached its processors on first use (as production
    configures them): in tests every call reads the current configuration."""
    structlog.configure(cache_logger_on_first_use=False)


@pytest.fixture(autouse=True)
def _clear_cache():
    """Throttle counters and cached payloads must not leak between tests."""
    cache.clear()
    local_caches_clear()
    yield
    cache.clear()
    local_caches_clear()


@pytest.fixture
def announcements():
    """announcements(EventType): the list that every event of that type announced during the test is appended
    to (tradingdash.events); the handlers are removed afterwards."""
    subscribed = []

    def collect(event_type: type) -> list:
        seen: list = []
        events.subscribe(event_type, seen.append)
        subscribed.append((event_type, seen.append))
        return seen

    yield collect
    for event_type, handler in subscribed:
        events.unsubscribe(event_type, handler)


# A Redis nobody listens on: tradingdash.cache degrades to misses and dropped writes.
DEAD_CACHE = {
    "BACKEND": "tradingdash.cache.ResilientRedisCache",
    "LOCATION": "redis://127.0.0.1:1/0",
    "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.1, "SOCKET_TIMEOUT": 0.1},
}


@pytest.fixture
def dead_cache(settings):
    """The default cache pointed at an unreachable Redis for the test."""
    from django.core.cache import caches

    from tradingdash import cache as resilient

    settings.CACHES = {"default": DEAD_CACHE}
    resilient._mark(False)
    yield caches["default"]
    resilient._mark(False)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def staff_user(db):
    return UserFactory(is_staff=True)


def _client_for(user) -> APIClient:
    """Authenticated without a JWT, so tests can move the clock freely (JWT itself is tested in accounts)."""
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def auth_client(user) -> APIClient:
    return _client_for(user)


@pytest.fixture
def staff_client(staff_user) -> APIClient:
    return _client_for(staff_user)


@pytest.fixture
def stored_then_provider_down(monkeypatch):
    """TCS.NS's daily candles stored on a Wednesday evening (market.tests.stale.STORED), then the configured
    market data provider down: reads at market.tests.stale.LATER find days of closed sessions missing."""
    import time_machine

    from market.services import candles_sync
    from market.sources import get_provider
    from market.tests.factories import down_provider
    from market.tests.stale import STORED
    from market.timeframes import Timeframe

    with time_machine.travel(STORED, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
    provider = down_provider()
    monkeypatch.setattr("market.services.get_provider", lambda name=None: provider)  # the configured one
    return provider


@pytest.fixture
def compute_worker(settings, monkeypatch):
    """This test's process as a web worker with a compute worker alive (tradingdash/offload.py): every offloaded
    call crosses as it would (kombu JSON both ways, the answer through a Redis list) and runs, as the compute
    task would, in place in this thread and its database transaction. Yields the names of the functions that
    were offloaded, in order."""
    import time

    from kombu.utils.json import dumps, loads

    from tradingdash import heartbeats, offload
    from tradingdash.celery import app
    from tradingdash.tasks import compute

    settings.COMPUTE_OFFLOAD = True
    settings.CELERY_TASK_ALWAYS_EAGER = False
    offload.client_reset()
    cache.set(heartbeats.WORKER_KEY.format(queue=settings.COMPUTE_QUEUE), time.time(), 120)
    offloaded: list[str] = []
    broken: list[
        BaseException
    ] = []  # raised on the worker's side: the web side would take it for the broker's

    def send_task(name, *, kwargs, queue, expires):
        assert (name, queue, expires) == (offload.TASK_NAME, settings.COMPUTE_QUEUE, settings.COMPUTE_TIMEOUT)
        message = loads(dumps(kwargs))
        assert set(message) == {"name", "kwargs", "reply", "request_id"}
        offloaded.append(message["name"])
        offload.web_process_mark(False)  # the compute worker's side: the task's own code
        try:
            compute.run(**message)
        except BaseException as exc:
            broken.append(exc)
            raise
        finally:
            offload.web_process_mark(True)

    monkeypatch.setattr(app, "send_task", send_task)
    offload.web_process_mark(True)
    yield offloaded
    offload.web_process_mark(False)
    offload.client_reset()
    assert not broken, f"the compute task raised instead of answering: {broken!r}"
