"""HTTP requests to the real ASGI application (tradingdash.asgi: our handler, middleware and async views), in
this process, counting the threads each one starts."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from dataclasses import dataclass

from asgiref.sync import async_to_sync


@dataclass
class AsgiResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    threads_started: int

    def comparable_headers(self) -> dict[str, str]:
        """Headers without the per-request id."""
        return {k: v for k, v in self.headers.items() if k != "x-request-id"}


_started = 0
_original_start = threading.Thread.start


def _counting_start(self, *args, **kwargs):
    global _started
    _started += 1
    return _original_start(self, *args, **kwargs)


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
    before = _started
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
        threads_started=_started - before,
    )


def asgi_request(method: str, path: str, *, token: str | None = None, **headers: str) -> AsgiResponse:
    """One request; `threads_started` counts the threads started while it was served (asgiref starts one per
    request that runs any sync code)."""
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    threading.Thread.start = _counting_start
    try:
        return async_to_sync(_request)(method, path, {k.replace("_", "-"): v for k, v in headers.items()})
    finally:
        threading.Thread.start = _original_start
