"""Cache keys for market data. Reads of one symbol are keyed by a per-symbol version that every sync bumps, so
a sync invalidates all cached views of that symbol (quotes, candles, signals) at once.

The hottest of them (a symbol's version and its quote) also sit in a per-process layer in front of Redis for
MARKET_LOCAL_CACHE_SECONDS (tradingdash.cache.LocalTTLCache): a dashboard polls quotes more than anything else,
and a dict lookup costs far less than a Redis round trip. A sync in this process replaces them at once; other
processes see it at most MARKET_LOCAL_CACHE_SECONDS later."""

from __future__ import annotations

import uuid
from contextvars import ContextVar

from django.core.cache import cache

from tradingdash.cache import LocalTTLCache

_VERSION_KEY = "market:version:{symbol}"
_VERSION_TTL = 7 * 24 * 3600
_local = LocalTTLCache(ttl_setting="MARKET_LOCAL_CACHE_SECONDS")
# The historical body key this request's event-loop read just found missing (history_body_aget): the thread that
# then renders it skips asking Redis again (~0.3 ms). A context variable is per request (each is its own task,
# and its sync thread works on a copy of the task's context), so no other request ever sees it.
_history_missed: ContextVar[str | None] = ContextVar("history_missed", default=None)
_UNANSWERED = object()


def market_version(symbol: str) -> str:
    """The symbol's current version. A version Redis lost (restarted, evicted, expired) is replaced by a new
    random one, never by a fixed default: what was cached under an earlier "0" must not become current again."""
    key = _VERSION_KEY.format(symbol=symbol)
    version = _local.get(key)
    if version is None:
        version = cache.get(key)
        if version is None:
            cache.add(key, uuid.uuid4().hex[:12], _VERSION_TTL)  # the first process to ask sets it
            version = cache.get(key)
        version = version or "0"  # Redis down: nothing is cached under any version then
        _local.set(key, version)
    return version


def market_version_forget(symbol: str) -> None:
    """Drop this process's copies of the symbol's version and quote: another process (a compute worker answering
    this one) may just have replaced them, and the next read must see that, not these copies for
    MARKET_LOCAL_CACHE_SECONDS, as it would after a write in this process."""
    _local.delete(_VERSION_KEY.format(symbol=symbol))
    _local.delete(quote_key(symbol))


def market_version_bump(symbol: str) -> None:
    key, version = _VERSION_KEY.format(symbol=symbol), uuid.uuid4().hex[:12]
    cache.set(key, version, _VERSION_TTL)
    _local.set(key, version)
    quote_cache_delete(symbol)


def quote_key(symbol: str) -> str:
    return f"market:quote:{symbol}"


def quote_cache_get(symbol: str) -> dict | None:
    key = quote_key(symbol)
    quote = _local.get(key)
    if quote is None:
        quote = cache.get(key)
        if quote is not None:
            _local.set(key, quote)
    return quote


def quote_cache_set(symbol: str, quote: dict, ttl: int) -> None:
    cache.set(quote_key(symbol), quote, ttl)
    _local.set(quote_key(symbol), quote)


def quote_cache_delete(symbol: str) -> None:
    cache.delete(quote_key(symbol))
    _local.delete(quote_key(symbol))


async def _local_awarm(key: str) -> None:
    """Copy `key` from Redis into the per-process layer on the event loop when the layer lacks it, as the sync
    readers below do, so that the async views (tradingdash.async_views) do not all fall back to a thread each
    time a one-second entry expires under load."""
    if _local.get(key) is None:
        aget_raw = getattr(cache, "aget_raw", None)
        value = await aget_raw(key) if aget_raw is not None else None
        if value is not None:
            _local.set(key, value)


async def quote_cache_awarm(symbol: str) -> None:
    await _local_awarm(quote_key(symbol))


async def market_version_awarm(symbol: str) -> None:
    await _local_awarm(_VERSION_KEY.format(symbol=symbol))


async def history_body_aget(key: str) -> bytes | None:
    """A cached historical body, read on the event loop (None when missing, or when the cache is not Redis)."""
    aget_raw = getattr(cache, "aget_raw", None)
    if aget_raw is None:
        return None
    body = await aget_raw(key, unanswered=_UNANSWERED)
    if body is _UNANSWERED:
        return None
    if body is None:
        _history_missed.set(key)
    return body


def history_body_get(key: str) -> bytes | None:
    """A cached historical body; None without asking when this request's event-loop read just missed it."""
    if _history_missed.get() == key:
        return None
    return cache.get(key)


def history_key(symbol: str, timeframe: str, *parts: object) -> str:
    tail = ":".join("" if p is None else str(p) for p in parts)
    return f"market:history:{symbol}:{timeframe}:{market_version(symbol)}:{tail}"
