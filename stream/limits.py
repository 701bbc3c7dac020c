"""What one client may send the live stream. Free of Django: the web worker's class reads the frame limit before
Django is set up (tradingdash/workers.py)."""

from __future__ import annotations

import time

# The largest client message, in bytes: a subscribe of 100 symbols is a few KiB. Production's server refuses larger
# frames itself (ws_max_size); the consumer refuses them too, under any server (`make run`'s uvicorn takes 16 MiB).
MAX_MESSAGE_BYTES = 64 * 1024


class TokenBucket:
    """Up to `burst` messages at once, then `rate` a second: each message takes a token, and tokens come back
    at `rate` up to `burst`."""

    def __init__(self, *, burst: int, rate: float) -> None:
        self.burst, self.rate = burst, rate
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
