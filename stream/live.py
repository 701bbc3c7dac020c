"""Which symbols have live subscribers, across every web process: a Redis sorted set of symbol -> expiry that
each open stream refreshes on its heartbeat, so a crashed process's subscriptions lapse on their own. Without
Redis (development, one process) the set lives in this process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from functools import cache

import redis
import structlog
from django.conf import settings

from tradingdash.cache import LocalTTLCache

logger = structlog.get_logger(__name__)

_local: dict[str, float] = {}
_local_lock = threading.Lock()
# Symbols this process put in the live set within the last heartbeat period: a thousand streams on the same
# symbols then cost one write per symbol and period instead of one per stream (bench/README.md).
_touched = LocalTTLCache(ttl_setting="STREAM_HEARTBEAT_SECONDS", maxsize=4096)


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.25)


def live_key() -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX") or "tradingdash"
    return f"{prefix}:stream:live"


def live_symbols_touch(symbols: Iterable[str], *, ttl: float | None = None) -> None:
    """Keep `symbols` in the live set for `ttl` seconds more (STREAM_SUBSCRIPTION_TTL by default)."""
    expiry = time.time() + (ttl if ttl is not None else settings.STREAM_SUBSCRIPTION_TTL)
    members = dict.fromkeys(symbols, expiry)
    if not members:
        return
    if not settings.REDIS_URL:
        with _local_lock:
            _local.update(members)
        return
    try:
        _client(settings.REDIS_URL).zadd(live_key(), members)
    except redis.RedisError as exc:
        logger.warning("live_symbols_touch_failed", error=str(exc))


def live_symbols_due(symbols: Iterable[str]) -> list[str]:
    """Of `symbols`, those this process has not touched within a heartbeat period, now marked as touched (the
    caller touches them). The TTL is several heartbeats, so skipping the others never lets a live symbol lapse."""
    due = [symbol for symbol in symbols if _touched.get(symbol) is None]
    for symbol in due:
        _touched.set(symbol, True)
    return due


def live_symbols() -> set[str]:
    """Symbols some open stream subscribed to and refreshed within their TTL (expired ones are dropped)."""
    now = time.time()
    if not settings.REDIS_URL:
        with _local_lock:
            for symbol in [s for s, expiry in _local.items() if expiry <= now]:
                del _local[symbol]
            return set(_local)
    try:
        client = _client(settings.REDIS_URL)
        client.zremrangebyscore(live_key(), "-inf", now)
        return {member.decode() for member in client.zrangebyscore(live_key(), now, "+inf")}
    except redis.RedisError as exc:
        logger.warning("live_symbols_unavailable", error=str(exc))
        return set()
