"""Cache keys for market data. Reads of one symbol are keyed by a per-symbol version that every sync bumps, so
a sync invalidates all cached views of that symbol (quotes, candles, signals) at once."""

from __future__ import annotations

import uuid

from django.core.cache import cache

_VERSION_KEY = "market:version:{symbol}"
_VERSION_TTL = 7 * 24 * 3600


def market_version(symbol: str) -> str:
    return cache.get(_VERSION_KEY.format(symbol=symbol)) or "0"


def market_version_bump(symbol: str) -> None:
    cache.set(_VERSION_KEY.format(symbol=symbol), uuid.uuid4().hex[:12], _VERSION_TTL)
    cache.delete(quote_key(symbol))


def quote_key(symbol: str) -> str:
    return f"market:quote:{symbol}"


def history_key(symbol: str, timeframe: str, *parts: object) -> str:
    tail = ":".join("" if p is None else str(p) for p in parts)
    return f"market:history:{symbol}:{timeframe}:{market_version(symbol)}:{tail}"
