"""A Redis cache that degrades gracefully: when Redis is down, reads miss and writes are dropped, and the
outage is logged once (and its end once), not on every request. After a failure the cache skips Redis for a
short cool-down, so a frozen Redis costs one socket timeout per cool-down rather than one per cache call."""

from __future__ import annotations

import functools
import threading
import time

import structlog
from django_redis.cache import RedisCache
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = structlog.get_logger(__name__)

_state_lock = threading.Lock()
_MISS = object()
_down = False
COOLDOWN_SECONDS = 2.0


def _mark(down: bool, error: Exception | None = None) -> None:
    global _down
    with _state_lock:
        changed = _down != down
        _down = down
    if changed and down:
        logger.warning("cache_unavailable", error=str(error))
    elif changed:
        logger.info("cache_recovered")


def cache_is_down() -> bool:
    return _down


def _resilient(default=None):
    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            if time.monotonic() < self._skip_until:
                return default
            try:
                result = method(self, *args, **kwargs)
            except (ConnectionInterrupted, RedisConnectionError, RedisTimeoutError, OSError) as exc:
                self._skip_until = time.monotonic() + COOLDOWN_SECONDS
                _mark(True, exc)
                return default
            if _down:
                _mark(False)
            return result

        return wrapper

    return decorate


class ResilientRedisCache(RedisCache):
    """django-redis cache whose failures are misses, logged once per outage."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._skip_until = 0.0
        # We handle exceptions ourselves (to log once); django-redis must raise them to us.
        self._ignore_exceptions = False

    def get(self, key, default=None, version=None, client=None):
        value = self._resilient_get(key, default, version, client)
        return default if value is _MISS else value

    @_resilient(default=_MISS)
    def _resilient_get(self, key, default, version, client):
        return RedisCache.get(self, key, default, version, client)

    set = _resilient(False)(RedisCache.set)
    add = _resilient(False)(RedisCache.add)
    delete = _resilient(False)(RedisCache.delete)
    get_many = _resilient({})(RedisCache.get_many)
    set_many = _resilient([])(RedisCache.set_many)
    delete_many = _resilient(0)(RedisCache.delete_many)
    delete_pattern = _resilient(0)(RedisCache.delete_pattern)
    incr = _resilient(None)(RedisCache.incr)
    has_key = _resilient(False)(RedisCache.has_key)
    touch = _resilient(False)(RedisCache.touch)
    clear = _resilient(None)(RedisCache.clear)
