"""Django's ASGI handler without the thread a request needs only for Django's own bookkeeping.

Django's handler runs every request in a ThreadSensitiveContext (so the sync code of one request shares one
thread, started for it), and always goes to that thread twice: to send `request_started` (its receivers are
sync) and to close the response (which sends `request_finished`). A request served entirely on the event loop
(tradingdash.async_views: a cached quote) therefore still started a thread and hopped to it twice, which cost
about two thirds of its CPU (bench/README.md, side by side). This handler does those two steps on the event loop
when that changes nothing:

- `request_started`'s receivers run inline unless one is async (then as Django does). Django's own receivers
  (reset_queries, close_old_connections) act on the current thread's database connections: the event loop's
  thread has none (Django refuses queries there), exactly like the fresh thread Django would have used.
- The response is closed inline when the request never used its thread (nothing sync ran: no database
  connection can have been opened for it); otherwise in that thread, as Django does, so `request_finished`
  returns that thread's connections.
- A request's thread is kept for a later request instead of being started for it and joined after it (as a
  WSGI server's thread pool keeps its threads): still one thread per request at a time, all of the request's
  sync code in it, and its connections returned at `request_finished` as before.

And a sent response does not outlive its request. Under load, hundreds of them did (a 370 KB historical body
each, ~100 MiB that glibc then kept: bench/README.md, "Web worker RSS"), freed only by a full collection of the
cyclic garbage collector, which a process with Django's import graph runs rarely. Two cycles held them:
- Django's handler re-raises the disconnect watcher's RequestAborted in this frame, while the task keeps the
  exception (task -> traceback -> this frame -> `tasks`, `response`). Here it is read with `task.exception()`.
- A DRF view keeps `self.response` and is in cycles of its own (its Request's parser context names the view;
  View.setup binds `self.head = self.get`). Every non-streaming response's body is released once it is sent.

Everything else is Django's `ASGIHandler.handle` (Django 5.2), unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import Future, ThreadPoolExecutor

import django
from asgiref.sync import SyncToAsync, ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import asgi
from django.urls import set_script_prefix


def get_asgi_application() -> ASGIHandler:
    """django.core.asgi.get_asgi_application, with this handler."""
    django.setup(set_prefix=False)
    return ASGIHandler()


class _RequestThread(ThreadPoolExecutor):
    """The one thread a request's sync code runs in (asgiref's per-request executor), kept for the next request
    instead of being started and joined for each: a thread's start and join cost ~0.27 ms of a sync request
    (bench/README.md, "Eighth look"). Remembers whether this request used it and its last call."""

    def __init__(self):
        super().__init__(max_workers=1, thread_name_prefix="request")
        self.lend()

    def lend(self) -> None:
        self.used = False
        self.last: Future | None = None

    def submit(self, fn, /, *args, **kwargs) -> Future:
        self.used = True
        self.last = super().submit(fn, *args, **kwargs)
        return self.last


# Threads no request is using, per process (touched only on an event loop's thread). More than this many at once
# (a burst of concurrent sync requests) are stopped when their request ends.
IDLE_REQUEST_THREADS = 8
_idle_threads: list[_RequestThread] = []


def _lend_thread(context: ThreadSensitiveContext) -> _RequestThread:
    """A kept thread (or a new one) as the executor asgiref runs this request's sync code in."""
    thread = _idle_threads.pop() if _idle_threads else _RequestThread()
    thread.lend()
    SyncToAsync.context_to_thread_executor[context] = thread
    return thread


def _return_thread(context: ThreadSensitiveContext, thread: _RequestThread) -> None:
    """Keep the thread for the next request, unless its last call is still running (a request cancelled while
    its sync code ran: that code finishes on its own) or enough are kept. Taken out of asgiref's map first, so
    ThreadSensitiveContext does not join it."""
    SyncToAsync.context_to_thread_executor.pop(context, None)
    if (thread.last is None or thread.last.done()) and len(_idle_threads) < IDLE_REQUEST_THREADS:
        thread.lend()  # forgets the last call: its result (the response) must not outlive the request
        _idle_threads.append(thread)
    else:
        thread.shutdown(wait=False)


def _used_thread(context: ThreadSensitiveContext) -> bool:
    """Whether sync code ran for this request."""
    thread = SyncToAsync.context_to_thread_executor.get(context)
    return thread is not None and getattr(thread, "used", True)


def _has_async_receivers(signal, sender) -> bool:
    """Signal.send cannot call async receivers from the event loop (Signal.asend sorts them the same way)."""
    return bool(signal._live_receivers(sender)[1])


class ASGIHandler(asgi.ASGIHandler):
    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        async with ThreadSensitiveContext() as context:
            thread = _lend_thread(context)
            try:
                await self.handle(scope, receive, send, context=context)
            finally:
                _return_thread(context, thread)

    async def handle(self, scope, receive, send, context: ThreadSensitiveContext | None = None):
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(asgi.get_script_prefix(scope))
        if _has_async_receivers(signals.request_started, self.__class__):
            await signals.request_started.asend(sender=self.__class__, scope=scope)
        else:
            signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await self.send_response(error_response, send)
            await sync_to_async(error_response.close)()
            return

        async def process_request(request, send):
            response = await self.run_get_response(request)
            with contextlib.suppress(asyncio.CancelledError):  # the client disconnected during send_response
                await self.send_response(response, send)
            return response

        # As Django: catch a disconnect while getting the response.
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request(request, send)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                # exception(), where Django re-raises with result(): uvicorn reports a disconnect as soon as
                # the response is complete, so most requests end with the watcher's RequestAborted, and
                # re-raised here it would tie this frame into a cycle (see the module's docstring; Django
                # ticket #36700).
                error = task.exception()
                if isinstance(error, AssertionError):
                    body_file.close()
                    raise error
                if error is not None and not isinstance(error, RequestAborted):
                    raise error
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            if (
                context is None
                or _used_thread(context)
                or _has_async_receivers(signals.request_finished, self.__class__)
            ):
                await sync_to_async(response.close)()
            else:
                response.close()
            if not response.streaming:
                response.content = b""  # sent and closed: whatever still holds the response needs no body
        body_file.close()
