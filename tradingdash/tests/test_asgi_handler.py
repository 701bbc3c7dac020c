"""The ASGI handler (tradingdash/asgi_handler.py), the async-capable middleware (tradingdash/middleware.py) and
the deploy checks that see them (tradingdash/checks.py)."""

import gc
import threading
from contextlib import contextmanager

import pytest
from django.core import checks as django_checks
from django.core.signals import request_finished
from django.http import HttpResponse
from rest_framework_simplejwt.tokens import AccessToken

from market.tests.factories import InstrumentFactory
from tradingdash.checks import check_security_middleware_subclasses
from tradingdash.tests.asgi import asgi_request


@pytest.fixture
def finished_in():
    """The thread each request_finished was sent in."""
    threads = []

    def receiver(**kwargs):
        threads.append(threading.current_thread())

    request_finished.connect(receiver)
    yield threads
    request_finished.disconnect(receiver)


@pytest.fixture
def _committed(monkeypatch):
    from django.db import connections

    monkeypatch.setitem(connections["default"].settings_dict, "CONN_MAX_AGE", 0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_committed")
def test_request_finished_is_sent_once_in_the_thread_a_sync_request_used(user, finished_in, settings):
    settings.MARKET_LOCAL_CACHE_SECONDS = 60
    InstrumentFactory(symbol="TCS.NS")
    token = str(AccessToken.for_user(user))

    sync = asgi_request("GET", "/api/market/symbols", token=token)  # a sync DRF view: runs in a thread
    assert sync.status == 200 and sync.thread_hops >= 1
    assert len(finished_in) == 1 and finished_in[0] is not threading.main_thread()
    worker_thread = finished_in[0]

    asgi_request("GET", "/api/market/quote/TCS", token=token)
    finished_in.clear()
    from_memory = asgi_request("GET", "/api/market/quote/TCS", token=token)
    assert from_memory.status == 200 and from_memory.thread_hops == 0
    assert len(finished_in) == 1 and finished_in[0] is not worker_thread  # on the event loop's thread


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_committed")
def test_a_later_sync_request_runs_in_the_thread_an_earlier_one_gave_back(user, finished_in):
    """Threads are kept between requests (tradingdash.asgi_handler._RequestThread), not started per request;
    the connection each request used is returned at its request_finished either way."""
    InstrumentFactory(symbol="TCS.NS")
    token = str(AccessToken.for_user(user))
    started = threading.active_count()
    for _ in range(3):
        response = asgi_request("GET", "/api/market/symbols", token=token)
        assert response.status == 200 and response.thread_hops >= 1
    assert len(finished_in) == 3 and len(set(finished_in)) == 1
    assert finished_in[0] is not threading.main_thread() and finished_in[0].is_alive()
    assert threading.active_count() <= started + 1


def test_a_thread_still_running_a_cancelled_requests_code_is_not_kept():
    """A request cancelled while its sync code runs (a client gone) leaves that code to finish on its own: its
    thread is not handed to the next request, which would wait behind it."""
    from asgiref.sync import ThreadSensitiveContext

    from tradingdash import asgi_handler

    release = threading.Event()
    context = ThreadSensitiveContext()
    thread = asgi_handler._lend_thread(context)
    thread.submit(release.wait, 5)
    asgi_handler._return_thread(context, thread)
    try:
        assert thread not in asgi_handler._idle_threads
    finally:
        release.set()
    done = ThreadSensitiveContext()
    kept = asgi_handler._lend_thread(done)
    kept.submit(lambda: None).result(5)
    asgi_handler._return_thread(done, kept)
    assert kept in asgi_handler._idle_threads
    following = ThreadSensitiveContext()
    assert asgi_handler._lend_thread(following) is kept  # the next request gets it
    asgi_handler._return_thread(following, kept)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_committed")
def test_the_admin_works_under_asgi_with_sessions_and_csrf():
    response = asgi_request("GET", "/admin/login/")
    assert response.status == 200
    assert "csrftoken=" in response.headers["set-cookie"]
    assert b'name="csrfmiddlewaretoken"' in response.body
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_committed")
def test_a_request_that_is_no_static_file_passes_whitenoise_to_the_view():
    # Static files themselves: tradingdash/tests/test_static_files.py, against the production server.
    response = asgi_request("GET", "/health")
    assert response.status in (200, 503) and b"database" in response.body
    assert response.headers["x-content-type-options"] == "nosniff"


@contextmanager
def _cyclic_garbage():
    """The objects the cyclic garbage collector finds unreachable after the block: what reference counting
    alone did not free."""
    gc.collect()
    gc.disable()
    garbage = []
    try:
        yield garbage
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        garbage.extend(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_committed")
def test_a_response_served_from_memory_is_freed_when_sent(user, settings):
    # Django's handler kept every response in a cycle through the disconnect's RequestAborted: hundreds of
    # 370 KB bodies alive under load, until a full collection (bench/README.md, "Web worker RSS").
    settings.MARKET_LOCAL_CACHE_SECONDS = 60
    InstrumentFactory(symbol="TCS.NS")
    token = str(AccessToken.for_user(user))
    asgi_request("GET", "/api/market/quote/TCS", token=token)
    with _cyclic_garbage() as garbage:
        response = asgi_request("GET", "/api/market/quote/TCS", token=token)
    assert response.status == 200 and response.thread_hops == 0  # served on the event loop
    assert not [o for o in garbage if isinstance(o, HttpResponse)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_committed")
def test_a_drf_view_in_a_cycle_does_not_keep_the_body_it_sent(user):
    InstrumentFactory.create_batch(3)
    token = str(AccessToken.for_user(user))
    with _cyclic_garbage() as garbage:
        response = asgi_request("GET", "/api/market/symbols", token=token)
    assert response.status == 200 and response.body.count(b'"symbol"') == 3
    kept = [o for o in garbage if isinstance(o, HttpResponse)]
    assert kept  # the view keeps its response and is in cycles (DRF, View.setup): this test sees them
    assert all(o.content == b"" for o in kept)


def _ids(messages) -> set[str]:
    return {message.id for message in messages}


def test_deploy_checks_see_our_security_middleware(settings):
    settings.SECURE_HSTS_SECONDS = 0
    settings.SECURE_SSL_REDIRECT = False
    settings.X_FRAME_OPTIONS = "SAMEORIGIN"
    found = _ids(check_security_middleware_subclasses(None))
    # What Django reports when its own classes are listed, which it skips for subclasses.
    assert {"security.W004", "security.W008", "security.W019"} <= found
    assert not found & {"security.W001", "security.W002", "security.W003", "tradingdash.W001"}


def test_deploy_checks_report_a_missing_security_middleware(settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith(".SecurityMiddleware")]
    assert "tradingdash.W001" in _ids(check_security_middleware_subclasses(None))


def test_the_check_is_registered_for_deploy():
    assert check_security_middleware_subclasses in django_checks.registry.registry.get_checks(
        include_deployment_checks=True
    )
