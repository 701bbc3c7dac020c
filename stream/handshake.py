"""Refusing a WebSocket at its handshake, before any consumer has accepted it (raw ASGI messages)."""

from __future__ import annotations

import json


async def handshake_refuse(
    scope,
    receive,
    send,
    *,
    status: int,
    body: dict,
    headers: list[tuple[bytes, bytes]] | None = None,
    close_code: int | None = None,
) -> None:
    """Answer the handshake with `status` and the JSON `body` where the server can send an HTTP answer (uvicorn can).
    Elsewhere a refused handshake is a bare 403, which tells the client nothing: with `close_code` the socket is
    accepted and closed with that code at once instead."""
    await receive()  # websocket.connect
    if "websocket.http.response" in scope.get("extensions", {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), *(headers or [])],
            }
        )
        await send({"type": "websocket.http.response.body", "body": json.dumps(body).encode()})
    elif close_code is not None:
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": close_code})
    else:
        await send({"type": "websocket.close"})
