from django.urls import path, re_path

from stream.consumers import StreamConsumer
from stream.handshake import handshake_refuse
from tradingdash.exceptions import error_body

_NOT_FOUND = error_body("not_found", "Not found: the live stream is at /ws/stream.")


async def unknown_path(scope, receive, send) -> None:
    """A WebSocket to any other path: refused at the handshake, with the JSON 404 where the server can send an
    HTTP answer (uvicorn can), else by closing (403). Without this route channels' URLRouter raises: a 500."""
    await handshake_refuse(scope, receive, send, status=404, body=_NOT_FOUND)


websocket_urlpatterns = [path("ws/stream", StreamConsumer.as_asgi()), re_path(r"", unknown_path)]
