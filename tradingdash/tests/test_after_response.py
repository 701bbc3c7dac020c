"""tradingdash.after_response: callbacks a request registers run once its response is closed (after it was sent),
in order, each even when another fails; outside a request they run at once."""

import asyncio

from django.http import HttpResponse
from django.test import RequestFactory

from tradingdash.after_response import AfterResponseMiddleware, after_response


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
