"""Reads of market data, shaped for the API. Hot paths build plain dicts from values_list."""

from __future__ import annotations

import json
from datetime import datetime

import orjson
import pandas as pd
import psycopg
import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Max
from django.utils import timezone
from psycopg import pq

from market.caching import history_key, quote_cache_get
from market.indicators import compute_indicators
from market.models import DataIssue, Instrument, MarketData
from market.presentation import DAY_TIMEFRAMES
from market.providers.base import CANDLE_COLUMNS, Provider, empty_candles
from market.providers.errors import ProviderError
from market.services import candles_ensure, quote_store
from market.sources import calendar_for, calendar_for_symbol, get_provider, time_zone_for_symbol
from market.timeframes import Timeframe

logger = structlog.get_logger(__name__)

# The latest candles over a binary-protocol cursor, rendered by orjson: decoding text timestamps was the costly
# part of the ORM read, and PostgreSQL's own rendering (string_agg of text, float8 printed per value) cost
# twice the binary read plus orjson (bench/README.md, "Historical cache miss"). Constant SQL; values are
# parameters.
_PG_HISTORY_SQL = """
SELECT "timestamp", open_price, high_price, low_price, close_price, volume, final, source
FROM market_marketdata
WHERE symbol = %(symbol)s AND timeframe = %(timeframe)s
  AND (%(start)s::timestamptz IS NULL OR "timestamp" >= %(start)s::timestamptz)
  AND (%(end)s::timestamptz IS NULL OR "timestamp" < %(end)s::timestamptz)
ORDER BY "timestamp" DESC
LIMIT %(limit)s
"""
# The first `limit` bars from the start instead of the latest.
_PG_HISTORY_FROM_START_SQL = _PG_HISTORY_SQL.replace('ORDER BY "timestamp" DESC', 'ORDER BY "timestamp" ASC')


def _binary_cursor():
    """A server-side-binding, binary-result psycopg cursor on Django's connection, wrapped like Django's own
    (query logging, execute wrappers). Django's cursors bind client-side, which cannot return binary results."""
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = psycopg.Cursor(connection.connection)
    raw.format = pq.Format.BINARY
    return connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)


def _history_candles_json(
    *,
    symbol: str,
    timeframe: Timeframe,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    from_start: bool = False,
    columns: bool = False,
) -> tuple[int, bytes, str | None]:
    """(count, JSON array of candle objects in time order, comma-joined sources): the latest `limit` candles,
    or with `from_start` the first `limit`."""
    if connection.vendor == "postgresql":
        with _binary_cursor() as cursor:
            cursor.execute(
                _PG_HISTORY_FROM_START_SQL if from_start else _PG_HISTORY_SQL,
                {"symbol": symbol, "timeframe": timeframe.value, "start": start, "end": end, "limit": limit},
            )
            values = cursor.fetchall()
    else:
        rows = MarketData.objects.filter(symbol=symbol, timeframe=timeframe.value)
        if start is not None:
            rows = rows.filter(timestamp__gte=start)
        if end is not None:
            rows = rows.filter(timestamp__lt=end)
        values = list(
            rows.order_by("timestamp" if from_start else "-timestamp").values_list(
                "timestamp",
                "open_price",
                "high_price",
                "low_price",
                "close_price",
                "volume",
                "final",
                "source",
            )[:limit]
        )
    if not from_start:
        values.reverse()
    # Times in the exchange's clock (orjson writes an aware datetime with its offset, 2026-11-27T09:15:00+05:30),
    # daily and weekly bars with their trading day, prices at two decimals (market.presentation).
    tz = time_zone_for_symbol(symbol)
    by_day = timeframe.value in DAY_TIMEFRAMES
    rows = []
    for ts, o, h, lo, c, v, final, _ in values:
        local = ts.astimezone(tz).replace(microsecond=0)
        row = {"timestamp": local, "open": round(o, 2), "high": round(h, 2), "low": round(lo, 2)}
        row.update(close=round(c, 2), volume=v, final=final)
        if by_day:
            row["date"] = local.date()
        rows.append(row)
    sources = ",".join(sorted({row[7] for row in values})) or None
    if columns:  # one array per field, times as UNIX seconds: what charting libraries take
        fields = ["open", "high", "low", "close", "volume", "final", *(["date"] if by_day else [])]
        table = {"time": [int(ts.timestamp()) for ts, *_ in values]}
        table.update({field: [row[field] for row in rows] for field in fields})
        return len(values), orjson.dumps(table), sources
    return len(values), orjson.dumps(rows), sources


def candles_history_key(
    *,
    symbol: str,
    timeframe: Timeframe,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 500,
    order: str = "desc",
    format: str = "rows",
) -> str:
    """The cache key of candles_history's body for the same arguments (async views read it without a thread)."""
    from_start = start is not None and order == "asc"
    parts = (start and start.isoformat(), end and end.isoformat(), limit, from_start, format)
    return history_key(symbol, timeframe.value, *parts)


def candles_history(
    *,
    symbol: str,
    timeframe: Timeframe,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 500,
    order: str = "desc",
    format: str = "rows",
    provider: Provider | None = None,
) -> bytes:
    """`limit` candles in [start, end), in time order, as the rendered JSON response body: the first ones from
    `start` with order "asc", else the latest. Fetches a never-fetched range once first. The rendered bytes are
    cached: rendering 2,500 candles costs more than reading them (bench/README.md)."""
    from_start = start is not None and order == "asc"
    query = {"start": start, "end": end, "limit": limit, "order": order, "format": format}
    key = candles_history_key(symbol=symbol, timeframe=timeframe, **query)
    cached = cache.get(key)
    if cached is not None:
        return cached
    ensured = candles_ensure(symbol=symbol, timeframe=timeframe, start=start, end=end, provider=provider)
    if ensured.fetched:
        # What we stored bumped the version.
        key = candles_history_key(symbol=symbol, timeframe=timeframe, **query)
    # The key is fixed before the read: a sync committing after this point bumps the version, so what we read
    # is cached under the older version at worst, never old candles under the new one.
    count, candles, sources = _history_candles_json(
        symbol=symbol,
        timeframe=timeframe,
        start=start,
        end=end,
        limit=limit,
        from_start=from_start,
        columns=format == "columns",
    )
    meta = {
        "symbol": symbol,
        "timeframe": timeframe.value,
        "source": sources,
        "count": count,
        "stale": ensured.stale,
    }
    body = (
        (json.dumps(meta, ensure_ascii=False, separators=(",", ":"))[:-1] + ',"candles":').encode()
        + candles
        + b"}"
    )
    if not ensured.stale:
        cache.set(key, body, settings.MARKET_DATA_CACHE_TTL)
    return body


def _quote_from_store(symbol: str) -> dict | None:
    """The last stored daily close against the one before it, for when the provider is down."""
    rows = list(
        MarketData.objects.filter(symbol=symbol, timeframe=Timeframe.D1)
        .order_by("-timestamp")
        .values_list("timestamp", "open_price", "high_price", "low_price", "close_price", "volume", "source")[
            :2
        ]
    )
    if not rows:
        return None
    ts, o, h, lo, c, v, source = rows[0]
    previous = rows[1][4] if len(rows) > 1 else None
    change = c - previous if previous is not None else None
    return {
        "symbol": symbol,
        "price": c,
        "change": change,
        "change_percent": change / previous * 100 if change is not None and previous else None,
        "open": o,
        "high": h,
        "low": lo,
        "previous_close": previous,
        "volume": v,
        "timestamp": ts,
        "currency": _currency(symbol),
        "source": source,
    }


def _currency(symbol: str) -> str:
    return Instrument.objects.filter(symbol=symbol).values_list("currency", flat=True).first() or "INR"


def _serialize_quote(payload: dict) -> dict:
    ts = payload["timestamp"]
    return {**payload, "timestamp": ts.isoformat() if isinstance(ts, datetime) else ts}


def quote_get(*, symbol: str, provider: Provider | None = None) -> dict:
    """Latest quote: from the cache, else the provider (cached briefly while NSE is open, longer when closed),
    else, when the provider fails or has no live quote (e.g. CSV files without recent bars), from the last stored
    daily candles, marked stale with `stale_seconds` (the time since that bar ended)."""
    now = timezone.now()
    status = calendar_for_symbol(symbol).status(now)
    cached = quote_cache_get(symbol)
    if cached is not None:
        return {**cached, "market_status": status.session, "cached": True}
    provider = provider or get_provider()
    try:
        fetched = provider.fetch_quote(symbol)
    except ProviderError as exc:
        stored = _quote_from_store(symbol)
        if stored is None:
            raise
        logger.warning("serving_stale_quote", symbol=symbol, error=str(exc))
        bar_end = min(stored["timestamp"] + Timeframe.D1.spec.bar, now)
        return {
            **_serialize_quote(stored),
            "market_status": status.session,
            "cached": False,
            "stale": True,
            "stale_seconds": int((now - bar_end).total_seconds()),
        }
    quote = quote_store(quote=fetched, is_open=status.is_open)
    return {**quote, "market_status": status.session, "cached": False}


def quotes_multiple(*, symbols: list[str], provider: Provider | None = None) -> dict:
    """Quotes for many symbols; one failing symbol is reported in `errors` and never fails the others."""
    provider = provider or get_provider()
    quotes, errors = [], {}
    for symbol in symbols:
        try:
            quotes.append(quote_get(symbol=symbol, provider=provider))
        except ProviderError as exc:
            errors[symbol] = str(exc)
    return {"quotes": quotes, "errors": errors}


def market_status(*, exchange: str = "NSE") -> dict:
    """Open/closed state of `exchange` now (UnknownExchange for a name without a calendar)."""
    status = calendar_for(exchange).status(timezone.now())
    return {
        "exchange": status.exchange,
        "timezone": status.timezone,
        "is_open": status.is_open,
        "session": status.session,
        "reason": status.reason,
        "now": status.now.isoformat(),
        "next_open": status.next_open.isoformat(),
        "next_close": status.next_close.isoformat(),
    }


def instruments_list() -> list[dict]:
    return list(Instrument.objects.values("symbol", "name", "exchange", "currency", "kind", "active"))


def candles_frame(
    *,
    symbol: str,
    timeframe: Timeframe,
    end: datetime | None = None,
    limit: int | None = None,
    final_only: bool = False,
) -> pd.DataFrame:
    """Stored candles as a candle frame (the pure modules' input), the latest `limit` before `end`. With
    `final_only`, only bars stored after their close: scoring, signals, training and backtests never see a
    partial bar."""
    rows = MarketData.objects.filter(symbol=symbol, timeframe=timeframe.value)
    if final_only:
        rows = rows.filter(final=True)
    if end is not None:
        rows = rows.filter(timestamp__lt=end)
    rows = rows.order_by("-timestamp").values_list(
        "timestamp", "open_price", "high_price", "low_price", "close_price", "volume"
    )
    values = list(rows[:limit] if limit else rows)
    if not values:
        return empty_candles()
    values.reverse()
    frame = pd.DataFrame(values, columns=["timestamp", *CANDLE_COLUMNS]).set_index("timestamp")
    frame.index = pd.DatetimeIndex(frame.index).tz_convert("UTC").as_unit("us")
    frame["volume"] = frame["volume"].astype("int64")
    return frame


def candles_count(*, symbol: str, timeframe: Timeframe) -> int:
    return MarketData.objects.filter(symbol=symbol, timeframe=timeframe.value).count()


def quality_report(*, symbol: str, timeframe: Timeframe, include_resolved: bool = False) -> dict:
    """The stored findings of the last quality checks of (symbol, timeframe), open ones first."""
    rows = DataIssue.objects.filter(symbol=symbol, timeframe=timeframe.value)
    checked_at = rows.aggregate(last=Max("checked_at"))["last"]
    if not include_resolved:
        rows = rows.filter(resolved=False)
    issues = list(
        rows.order_by("resolved", "start").values(
            "id",
            "kind",
            "start",
            "end",
            "details",
            "unavailable",
            "resolved",
            "detected_at",
            "checked_at",
            "resolved_at",
        )
    )
    open_by_kind: dict[str, int] = {}
    for issue in issues:
        if not issue["resolved"]:
            open_by_kind[issue["kind"]] = open_by_kind.get(issue["kind"], 0) + 1
    return {
        "symbol": symbol,
        "timeframe": timeframe.value,
        "checked_at": checked_at,
        "open": open_by_kind,
        "issues": issues,
    }


def symbol_require_known(*, symbol: str, provider: Provider | None = None) -> None:
    """Raise SymbolNotFound (404) for a symbol neither in the catalogue, nor stored, nor known to the provider
    (asked for a quote, like the quote endpoint). A yes is remembered for a day: list endpoints stay cheap."""
    key = f"market:known:{symbol}"
    if cache.get(key):
        return
    stored = MarketData.objects.filter(symbol=symbol).exists()
    if not stored and not Instrument.objects.filter(symbol=symbol).exists():
        quote_get(symbol=symbol, provider=provider)
    cache.set(key, True, 24 * 3600)


def indicators_history(
    *,
    symbol: str,
    timeframe: Timeframe,
    indicators: list,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 500,
    order: str = "desc",
    provider: Provider | None = None,
) -> dict:
    """Indicator series aligned bar for bar with the candles the historical endpoint gives for the same query
    (same `timestamp`/`date`), warm-up bars null; cached like historical, until the symbol's next sync."""
    names = ",".join(ind.name for ind in indicators)
    key = history_key(
        symbol, timeframe.value, start and start.isoformat(), end and end.isoformat(), limit, order, names
    )
    cached = cache.get(key)
    if cached is not None:
        return cached
    history = json.loads(
        candles_history(
            symbol=symbol,
            timeframe=timeframe,
            start=start,
            end=end,
            limit=limit,
            order=order,
            provider=provider,
        )
    )
    candles = history["candles"]
    frame = pd.DataFrame(candles, columns=["open", "high", "low", "close", "volume"])
    sessions = [c["timestamp"][:10] for c in candles] if timeframe.is_intraday else None
    series = compute_indicators(frame, indicators, session_days=sessions)
    rows = []
    for i, candle in enumerate(candles):
        row = {k: candle[k] for k in ("timestamp", "date") if k in candle}
        for name, values in series.items():
            row[name] = (
                {line: points[i] for line, points in values.items()}
                if isinstance(values, dict)
                else values[i]
            )
        rows.append(row)
    payload = {
        "symbol": symbol,
        "timeframe": timeframe.value,
        "count": len(rows),
        "stale": history["stale"],
        "indicators": [ind.name for ind in indicators],
        "rows": rows,
    }
    if not history["stale"]:
        cache.set(key, payload, settings.MARKET_DATA_CACHE_TTL)
    return payload
