"""A request budget shared by every process and machine through Redis.

`RedisSlidingWindowLimiter` has the interface of the per-process limiter (market.providers.yfinance's
`SlidingWindowLimiter`): `acquire(limit, *, max_wait=None)` blocks until a call may start under `limit` calls per
window and returns the seconds it waited, or raises RateLimited (with `retry_after`) when the wait would exceed
`max_wait`. The budget is one Redis sorted set of call start times per key; a Lua script drops the starts older
than the window, admits the call if fewer than `limit` remain, and otherwise answers how long until enough of them
leave, all in one atomic step. Times are Redis's own clock (TIME inside the script), so machines whose clocks
disagree still share one window; tests may pass a `clock` instead, which every limiter on that key must then use.

When Redis cannot be reached, the call falls back to the per-process limiter it was given: a sync is never failed
because the budget's Redis is down, it is only paced per process again (Yahoo may then see the budget once per
process). The outage is logged once, and its end once; after a failure Redis is skipped for a short cool-down, so
a frozen Redis costs one socket timeout per cool-down rather than one per call.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable
from typing import Protocol

import structlog
from redis import Redis
from redis.exceptions import RedisError

from market.providers.errors import RateLimited

logger = structlog.get_logger(__name__)

COOLDOWN_SECONDS = 2.0

# KEYS[1]: the sorted set of start times (score) of the window's calls.
# ARGV: limit, window (s), a unique member for this call, now (s; empty: Redis's clock).
# Returns "0" when the call is admitted (and recorded), else the seconds until a slot frees, as a string
# (a Lua number returned to Redis is truncated to an integer).
_ACQUIRE = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local now = tonumber(ARGV[4])
if not now then
  local time = redis.call('TIME')
  now = tonumber(time[1]) + tonumber(time[2]) / 1000000
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
  return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
return tostring(math.max(tonumber(oldest[2]) + window - now, 0.001))
"""


class Limiter(Protocol):
    def acquire(self, limit: int, *, max_wait: float | None = None) -> float: ...


class RedisSlidingWindowLimiter:
    """At most `limit` calls start in any `window` seconds across every limiter on the same Redis `key`.

    Waiting callers poll Redis after sleeping the time it names: there is no queue across processes, so a caller
    may be overtaken by another that asks at the right moment (the per-process limiter queues its callers)."""

    def __init__(
        self,
        *,
        client: Redis,
        key: str,
        fallback: Limiter,
        window: float = 60.0,
        name: str = "Yahoo Finance",
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.client = client
        self.key = key
        self.fallback = fallback
        self.window = window
        self.name = name
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic
        self._script = client.register_script(_ACQUIRE)
        self._skip_until = 0.0
        self._down = False
        self._state_lock = threading.Lock()

    def acquire(self, limit: int, *, max_wait: float | None = None) -> float:
        """Block until a call may start under `limit` calls per window; return the seconds waited. With
        `max_wait`, raise RateLimited (with the seconds until a slot frees) as soon as the wait would exceed it."""
        if limit < 1:
            raise ValueError("The limit must allow at least one call per window")
        waited = 0.0
        while True:
            delay = self._try_acquire(limit)
            if delay is None:  # Redis unreachable: this process paces itself for the rest of the wait
                remaining = None if max_wait is None else max(max_wait - waited, 0.0)
                return waited + self.fallback.acquire(limit, max_wait=remaining)
            if delay == 0:
                return waited
            if max_wait is not None and waited + delay > max_wait:
                raise RateLimited(
                    f"{self.name} request budget ({limit} in {self.window:g} s, shared by every process) used up; "
                    f"next slot in {delay:.0f} s",
                    retry_after=math.ceil(delay),
                )
            self._sleep(delay)
            waited += delay

    def _try_acquire(self, limit: int) -> float | None:
        """0 when admitted, else the seconds until a slot frees; None when Redis cannot answer."""
        if self._monotonic() < self._skip_until:
            return None
        now = "" if self._clock is None else repr(self._clock())
        try:
            answer = self._script(
                keys=[self.key],
                args=[limit, repr(float(self.window)), uuid.uuid4().hex, now],
                client=self.client,
            )
        except (RedisError, OSError) as error:
            self._skip_until = self._monotonic() + COOLDOWN_SECONDS
            self._mark(down=True, error=error)
            return None
        self._mark(down=False)
        return float(answer)

    def _mark(self, *, down: bool, error: Exception | None = None) -> None:
        with self._state_lock:
            changed, self._down = self._down != down, down
        if changed and down:
            logger.warning("rate_limiter_redis_unavailable", key=self.key, error=str(error))
        elif changed:
            logger.info("rate_limiter_redis_recovered", key=self.key)
