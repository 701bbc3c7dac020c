"""A Redis cache that degrades gracefully: when Redis is down, reads miss and writes are dropped, and the
outage is logged once (and its end once), not on every request. After a failure the cache skips Redis for a
short cool-down, so a frozen Redis costs one socket timeout per cool-down rather than one per cache call."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import threading
import time
import weakref

import structlog
from django.conf import settings
from django_redis.cache import RedisCache
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = structlog.get_logger(__name__)

_state_lock = threading.Lock()
# Set while an async view serves from memory only (`local_only`): any call that would reach Redis raises.
_local_only: contextvars.ContextVar[bool] = contextvars.ContextVar("local_only", default=False)


class NotInLocalCache(Exception):
    """Raised under `local_only()` where the code would have gone to Redis (or is about to do other I/O)."""


@contextlib.contextmanager
def local_only():
    """Run sync read code on the event loop when everything it needs sits in the per-process layers: a call
    that would go to Redis raises NotInLocalCache instead, and Django itself raises SynchronousOnlyOperation
    for a database query from async code. The caller then runs the same code in a thread, as a sync view."""
    token = _local_only.set(True)
    try:
        yield
    finally:
        _local_only.reset(token)


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
            if _local_only.get():
                raise NotInLocalCache(method.__name__)
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

    def clear(self):
        # The per-process layers hold copies of what Redis holds: a cleared cache clears them too.
        local_caches_clear()
        return self._resilient_clear()

    _resilient_clear = _resilient(None)(RedisCache.clear)

    async def aget_raw(self, key: str, unanswered=None):
        """`get` for async views, without a thread: redis.asyncio on this event loop, the value decoded as
        django-redis stores it. None when missing; `unanswered` when Redis is down or cooling down (the caller
        then takes the sync path, which logs the outage once)."""
        if time.monotonic() < self._skip_until:
            return unanswered
        client, codec = self._async_client()
        try:
            value = await client.get(codec.make_key(key))
        except (RedisConnectionError, RedisTimeoutError, OSError):
            return unanswered
        return None if value is None else codec.decode(value)

    def _async_client(self):
        """(redis.asyncio client, django-redis client for keys and decoding), one per event loop and server.
        Kept at module level: Django gives each async request context its own cache backend instance, and a
        client per instance was a new connection per request."""
        clients = _async_clients.setdefault(asyncio.get_running_loop(), {})
        server = str(self._server).split(",")[0]  # the primary, as DefaultClient reads
        if server not in clients:
            options = self._params.get("OPTIONS", {})
            client = redis_async_client(
                server,
                connect_timeout=options.get("SOCKET_CONNECT_TIMEOUT"),
                socket_timeout=options.get("SOCKET_TIMEOUT"),
            )
            clients[server] = (client, self.client)
        return clients[server]


# Event loop -> {server: (redis.asyncio client, django-redis client)}: uvicorn runs one loop per worker.
_async_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Event loop -> {(url, timeouts): redis.asyncio client}.
_async_redis: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def redis_async_client(url: str, *, connect_timeout: float | None, socket_timeout: float | None):
    """The running event loop's redis.asyncio client for `url`, for code on the loop that must not block it (the
    cache's async reads, the live stream). One per loop: a client's connections belong to the loop that made
    them, and one per call would be a new connection per call."""
    clients = _async_redis.setdefault(asyncio.get_running_loop(), {})
    key = (url, connect_timeout, socket_timeout)
    if key not in clients:
        import redis.asyncio

        clients[key] = redis.asyncio.Redis.from_url(
            url, socket_connect_timeout=connect_timeout, socket_timeout=socket_timeout
        )
    return clients[key]


class LocalTTLCache:
    """A small per-process cache in front of Redis for the hottest reads (a quote, a user row): a hit costs a
    dict lookup instead of a network round trip. Each entry lives `ttl` seconds (read from the named setting
    at each set, so tests can change it), which bounds how long another process's change goes unseen; changes
    made in this process delete or replace the entry at once. Thread-safe: single dict operations only."""

    def __init__(self, *, ttl_setting: str, maxsize: int = 1024):
        self.ttl_setting = ttl_setting
        self.maxsize = maxsize
        self._entries: dict[object, tuple[float, object]] = {}
        _local_caches.add(self)

    @property
    def ttl(self) -> float:
        return float(getattr(settings, self.ttl_setting))

    def get(self, key, default=None):
        entry = self._entries.get(key)
        if entry is None or entry[0] <= time.time():
            return default
        return entry[1]

    def set(self, key, value) -> None:
        ttl = self.ttl
        if ttl <= 0:
            return
        if len(self._entries) >= self.maxsize:
            self._entries.clear()  # a crude bound: these caches hold a few hot keys
        self._entries[key] = (time.time() + ttl, value)

    def delete(self, key) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


_local_caches: weakref.WeakSet[LocalTTLCache] = weakref.WeakSet()


def local_layer_register(layer) -> None:
    """Another per-process layer (any object with `clear()`) that local_caches_clear empties too."""
    _local_caches.add(layer)


def local_caches_clear() -> None:
    """Empty every per-process layer (tests, and cache.clear())."""
    for layer in list(_local_caches):
        layer.clear()


def cache_set_after_response(key: str, value, seconds: int) -> None:
    """`cache.set(key, value, seconds)` once the current request's answer is sent (tradingdash.after_response),
    for the time left of those `seconds` counted from now: sending a large body to a slow client can take
    seconds, and an entry that must end when a bar closes must not outlive it by them. Nothing is stored when
    less than a second is left."""
    from django.core.cache import cache

    from tradingdash.after_response import after_response

    deadline = time.monotonic() + seconds

    def store() -> None:
        left = int(deadline - time.monotonic())  # rounded down: never past the deadline
        if left >= 1:
            cache.set(key, value, left)

    after_response(store)
