import json

from django.urls import path, re_path

from stream.consumers import StreamConsumer
from tradingdash.exceptions import error_body

_NOT_FOUND = json.dumps(error_body("not_found", "Not found: the live stream is at /ws/stream.")).encode()


async def unknown_path(scope, receive, send) -> None:
    """A WebSocket to any other path: refused at the handshake, with the JSON 404 where the server can send an
    HTTP answer (uvicorn can), else by closing (403). Without this route channels' URLRouter raises: a 500."""
    await receive()  # websocket.connect
    if "websocket.http.response" in scope.get("extensions", {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 404,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": _NOT_FOUND})
    else:
        await send({"type": "websocket.close"})


websocket_urlpatterns = [path("ws/stream", StreamConsumer.as_asgi()), re_path(r"", unknown_path)]
