"""A middleware that runs in whichever mode the stack around it is (Django's "sync and async" middleware)."""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction


class SyncAndAsyncMiddleware:
    """Sync under WSGI, async under ASGI (no thread hop for it): a subclass defines `__call__`'s two halves,
    `_sync_call(request)` and the coroutine `_async_call(request)`."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.async_mode:
            return self._async_call(request)
        return self._sync_call(request)
