"""HTTP requests to the real ASGI application (tradingdash.asgi: our handler, middleware and async views), in
this process, counting the calls each one hands to a thread."""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from asgiref.sync import async_to_sync


@dataclass
class AsgiResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    thread_hops: int

    def comparable_headers(self) -> dict[str, str]:
        """Headers without the per-request id."""
        return {k: v for k, v in self.headers.items() if k != "x-request-id"}


_hops = 0
_original_submit = ThreadPoolExecutor.submit


def _counting_submit(self, *args, **kwargs):
    global _hops
    _hops += 1
    return _original_submit(self, *args, **kwargs)


async def _request(method: str, path: str, headers: dict[str, str]) -> AsgiResponse:
    from tradingdash.asgi import application

    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    before = _hops
    # As uvicorn: the request body, then (once the response is complete) a disconnect for the handler's
    # listener; most requests in production end with that RequestAborted (tradingdash/asgi_handler.py).
    incoming = [{"type": "http.request", "body": b"", "more_body": False}]
    sent = []
    complete = asyncio.Event()

    async def receive():
        if incoming:
            return incoming.pop()
        await complete.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            complete.set()

    # In a context of its own, as a server's: not this test's (whose async_to_sync would run sync code here).
    task = contextvars.Context().run(asyncio.create_task, application(scope, receive, send))
    await asyncio.wait_for(task, 10)
    start = sent[0]
    body = b"".join(message.get("body", b"") for message in sent[1:])
    return AsgiResponse(
        status=start["status"],
        headers={k.decode().lower(): v.decode() for k, v in start["headers"]},
        body=body,
        thread_hops=_hops - before,
    )


def asgi_request(method: str, path: str, *, token: str | None = None, **headers: str) -> AsgiResponse:
    """One request; `thread_hops` counts the calls handed to a thread while it was served (sync_to_async: the
    DRF view, Django's bookkeeping for a request that ran sync code)."""
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    ThreadPoolExecutor.submit = _counting_submit
    try:
        return async_to_sync(_request)(method, path, {k.replace("_", "-"): v for k, v in headers.items()})
    finally:
        ThreadPoolExecutor.submit = _original_submit
        _settle_kept_threads()


def _settle_kept_threads() -> None:
    """Wait until each kept request thread has let go of its last call (a worker drops it a moment after the
    call's result is set): what the request leaves alive is then what the handler keeps, not a race."""
    from tradingdash.asgi_handler import _idle_threads

    for thread in list(_idle_threads):
        _original_submit(thread, lambda: None).result(timeout=5)
        thread.lend()
