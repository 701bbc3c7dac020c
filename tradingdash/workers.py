"""The gunicorn worker class: uvicorn serving tradingdash.asgi (HTTP and the /ws/stream WebSocket)."""

from uvicorn_worker import UvicornWorker


class AsgiWorker(UvicornWorker):
    """Django has no lifespan protocol; client messages on the stream are tiny, so frames are capped small.
    No per-message deflate on the stream: its messages are a few hundred bytes, and compressing each one for each
    socket was an eighth of a worker's fan-out time, plus a compressor's memory per connection (bench/README.md)."""

    CONFIG_KWARGS = {
        "loop": "auto",
        "http": "auto",
        "lifespan": "off",
        "ws_max_size": 64 * 1024,
        "ws_per_message_deflate": False,
    }
