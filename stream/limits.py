"""What one client may send the live stream. Free of Django: the web worker's class reads the frame limit before
Django is set up (tradingdash/workers.py)."""

from __future__ import annotations

# The largest client message, in bytes: a subscribe of 100 symbols is a few KiB. Production's server refuses larger
# frames itself (ws_max_size); the consumer refuses them too, under any server (`make run`'s uvicorn takes 16 MiB).
MAX_MESSAGE_BYTES = 64 * 1024
