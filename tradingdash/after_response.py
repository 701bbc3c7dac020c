"""Work that may wait until the client has its answer: run when the response is closed, after it was sent.

A historical read that misses the response cache renders a body of up to ~370 KB and stores it in Redis for the
next reader. Sending that copy to Redis took ~1.3 ms of the read's ~8 ms (py-spy under the in-process benchmark,
bench/README.md "Eighth look"), time the client spent waiting for bytes it already could have had. Servers close a
response once it is sent (WSGI's `close()`, Django's ASGI handler after the last body message; Django's test
clients too), so a callback registered with `after_response` during a request runs after its body has left and
before the request's thread is given back. Outside a request (a Celery task, a shell, a view called without the
middleware) it runs at once: nothing is ever skipped, only moved.

Callbacks must not need the response: a cache write the next request may use, never something the answer
depends on. One that raises is logged and the others still run.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

import structlog
from django.http import HttpRequest, HttpResponseBase

from tradingdash.middleware_modes import SyncAndAsyncMiddleware

logger = structlog.get_logger(__name__)

# The current request's callbacks. A list shared by reference: a sync view's thread works on a copy of the
# context (asgiref), and appends to the same list the middleware hands to the response.
_pending: ContextVar[list[Callable[[], object]] | None] = ContextVar("after_response", default=None)


def after_response(callback: Callable[[], object]) -> None:
    """Run `callback` once the current request's response is sent and closed; at once outside a request."""
    pending = _pending.get()
    if pending is None:
        callback()
    else:
        pending.append(callback)


def _run(callbacks: list[Callable[[], object]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:
            logger.exception(
                "after_response_failed", callback=getattr(callback, "__qualname__", repr(callback))
            )
    callbacks.clear()


class AfterResponseMiddleware(SyncAndAsyncMiddleware):
    """Collects the request's `after_response` callbacks and runs them when its response is closed. Sync and
    async capable, adds no thread hop."""

    def _sync_call(self, request: HttpRequest):
        callbacks: list[Callable[[], object]] = []
        token = _pending.set(callbacks)
        try:
            response = self.get_response(request)
        except BaseException:
            _run(callbacks)  # the handler turns it into a response this middleware never sees
            raise
        finally:
            _pending.reset(token)
        return self._attach(response, callbacks)

    async def _async_call(self, request: HttpRequest):
        callbacks: list[Callable[[], object]] = []
        token = _pending.set(callbacks)
        try:
            response = await self.get_response(request)
        except BaseException:
            _run(callbacks)
            raise
        finally:
            _pending.reset(token)
        return self._attach(response, callbacks)

    @staticmethod
    def _attach(response: HttpResponseBase, callbacks: list[Callable[[], object]]) -> HttpResponseBase:
        if callbacks:
            # Django's own hook for "when the response is closed" (FileResponse closes its file through it).
            response._resource_closers.append(lambda: _run(callbacks))
        return response
