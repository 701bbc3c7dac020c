"""The gunicorn worker class: uvicorn serving tradingdash.asgi (HTTP and the /ws/stream WebSocket)."""

import gc
import os

from uvicorn_worker import UvicornWorker

from stream.limits import MAX_MESSAGE_BYTES

# Young-generation threshold of the cyclic garbage collector in web workers (CPython's default is 700).
GC_THRESHOLD_ENV = "GUNICORN_GC_THRESHOLD"
DEFAULT_GC_THRESHOLD = 7000


def settle_gc(threshold: int) -> None:
    """Take what the worker loaded at start-up (Django, the URLconf and its views, the market data provider with
    pandas, NumPy: ~190,000 objects) out of the cyclic collector's sight and collect young objects less often.

    Under load a worker's full collections walked all of it: 145-290 ms in which the event loop answered no
    one, the tail of the load script's quote latency (bench/README.md, "Garbage collector"). DRF's serializers
    and sync views leave 50-120 objects in reference cycles per request, so collections keep coming; frozen
    objects are never collected (they live as long as the process anyway), and a young generation of
    `threshold` objects is still a fraction of a millisecond to scan."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(threshold, middle, old)


class AsgiWorker(UvicornWorker):
    """Django has no lifespan protocol; client messages on the stream are tiny, so frames are capped small.
    No per-message deflate on the stream: its messages are a few hundred bytes, and compressing each one for each
    socket was an eighth of a worker's fan-out time, plus a compressor's memory per connection (bench/README.md)."""

    CONFIG_KWARGS = {
        "loop": "auto",
        "http": "auto",
        "lifespan": "off",
        "ws_max_size": MAX_MESSAGE_BYTES,
        "ws_per_message_deflate": False,
    }

    def load_wsgi(self):
        super().load_wsgi()
        # Import every view and serializer now, not on a request: a worker's first requests are not slowed by
        # imports, and what they load is frozen with the rest. Provider fetches, indicators, signals and
        # predictions run in compute workers (tradingdash/offload.py), so pandas and the provider are not loaded
        # here; only where they would run in this process (COMPUTE_OFFLOAD off, or no Redis) are they, now.
        from django.urls import get_resolver

        from market.sources import provider_preload
        from tradingdash import offload

        offload.web_process_mark()
        get_resolver().url_patterns  # noqa: B018 - loads the URLconf
        if not offload.configured():
            provider_preload()
        settle_gc(int(os.environ.get(GC_THRESHOLD_ENV) or DEFAULT_GC_THRESHOLD))
