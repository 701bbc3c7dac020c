"""The gunicorn worker class: uvicorn serving tradingdash.asgi (HTTP and the /ws/stream WebSocket)."""

from uvicorn_worker import UvicornWorker


class AsgiWorker(UvicornWorker):
    """Django has no lifespan protocol; client messages on the stream are tiny, so frames are capped small."""

    CONFIG_KWARGS = {"loop": "auto", "http": "auto", "lifespan": "off", "ws_max_size": 64 * 1024}
