"""tradingdash.after_response: callbacks a request registers run once its response is closed (after it was sent),
in order, each even when another fails; outside a request they run at once."""

import asyncio

import pytest
from django.core.cache import cache
from django.http import HttpResponse
from django.test import RequestFactory

from tradingdash.after_response import AfterResponseMiddleware, after_response
from tradingdash.cache import cache_set_after_response


def _view_registering(*callbacks):
    def view(request):
        for callback in callbacks:
            after_response(callback)
        return HttpResponse(b"answer")

    return view


def test_callbacks_wait_for_the_response_to_be_closed():
    ran = []
    middleware = AfterResponseMiddleware(_view_registering(lambda: ran.append(1), lambda: ran.append(2)))
    response = middleware(RequestFactory().get("/"))
    assert ran == []  # the view returned, the body is not sent yet
    assert response.content == b"answer"
    response.close()
    assert ran == [1, 2]
    response.close()  # a second close runs nothing twice
    assert ran == [1, 2]


def test_an_async_request_defers_them_too():
    ran = []

    async def view(request):
        after_response(lambda: ran.append("stored"))
        return HttpResponse(b"answer")

    middleware = AfterResponseMiddleware(view)
    response = asyncio.run(middleware(RequestFactory().get("/")))
    assert ran == []
    response.close()
    assert ran == ["stored"]


def test_a_failing_callback_is_logged_and_the_next_still_runs(caplog):
    ran = []

    def fails():
        raise RuntimeError("redis went away")

    middleware = AfterResponseMiddleware(_view_registering(fails, lambda: ran.append("next")))
    response = middleware(RequestFactory().get("/"))
    response.close()  # does not raise
    assert ran == ["next"]


def test_outside_a_request_a_callback_runs_at_once():
    ran = []
    after_response(lambda: ran.append("now"))
    assert ran == ["now"]


def test_requests_do_not_share_callbacks():
    ran = []
    middleware = AfterResponseMiddleware(_view_registering(lambda: ran.append("first")))
    first = middleware(RequestFactory().get("/"))
    second = AfterResponseMiddleware(_view_registering())(RequestFactory().get("/"))
    second.close()
    assert ran == []
    first.close()
    assert ran == ["first"]
    after_response(lambda: ran.append("after both"))  # no request is current any more
    assert ran == ["first", "after both"]


@pytest.fixture
def clock(monkeypatch):
    from tradingdash import cache as cache_module

    now = [100.0]
    monkeypatch.setattr(cache_module.time, "monotonic", lambda: now[0])
    return now


def _response_storing(key: str, seconds: int):
    def view(request):
        cache_set_after_response(key, b"body", seconds)
        return HttpResponse(b"answer")

    return AfterResponseMiddleware(view)(RequestFactory().get("/"))


def test_a_deferred_cache_write_keeps_only_the_time_left_when_the_answer_was_sent(clock):
    """An entry that must end when a bar closes does not outlive it by the time a slow client took to read."""
    response = _response_storing("after-response:left", 5)
    assert cache.get("after-response:left") is None  # not before the answer is sent
    clock[0] += 2.5
    response.close()
    assert cache.get("after-response:left") == b"body"
    assert 1 <= cache.ttl("after-response:left") <= 2


def test_a_deferred_cache_write_whose_time_ran_out_stores_nothing(clock):
    response = _response_storing("after-response:late", 5)
    clock[0] += 4.5
    response.close()
    assert cache.get("after-response:late") is None


def test_outside_a_request_the_cache_write_is_at_once_for_its_full_time(clock):
    cache_set_after_response("after-response:now", b"body", 30)
    assert cache.get("after-response:now") == b"body"
    assert 29 <= cache.ttl("after-response:now") <= 30
