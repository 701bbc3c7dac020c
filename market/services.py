"""Writes of market data: idempotent candle upserts, incremental sync, on-demand backfill, holidays."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from market.caching import market_version_bump, quote_key
from market.calendar import load_holidays_csv
from market.models import CandleCoverage, MarketData, MarketHoliday
from market.providers.base import LookbackExceeded, Provider, Quote, validate_candles
from market.providers.errors import ProviderUnavailable, SymbolNotFound
from market.sources import get_calendar, get_provider, holidays_invalidate
from market.timeframes import Timeframe
from tradingdash import events
from tradingdash.metrics import CANDLES_SYNCED

logger = structlog.get_logger(__name__)

# History fetched for a symbol seen for the first time (within Yahoo's lookback limits).
DEFAULT_DAYS = {
    Timeframe.M1: 7,
    Timeframe.M5: 59,
    Timeframe.M15: 59,
    Timeframe.H1: 365,
    Timeframe.D1: 5 * 365,
    Timeframe.W1: 10 * 365,
}
# Re-fetch this much before the last stored candle so a bar that was still forming gets its final values.
OVERLAP = {
    Timeframe.M1: timedelta(minutes=2),
    Timeframe.M5: timedelta(minutes=10),
    Timeframe.M15: timedelta(minutes=30),
    Timeframe.H1: timedelta(hours=2),
    Timeframe.D1: timedelta(days=3),
    Timeframe.W1: timedelta(weeks=1),
}
_UPSERT_BATCH = 5000
_UPDATE_FIELDS = ["open_price", "high_price", "low_price", "close_price", "volume", "source", "updated_at"]


@dataclass(frozen=True, kw_only=True)
class UpsertResult:
    inserted: int
    updated: int
    rejected: int
    first: datetime | None
    last: datetime | None


@dataclass(frozen=True, kw_only=True)
class SyncResult:
    symbol: str
    timeframe: str
    inserted: int
    updated: int
    rejected: int
    first: datetime | None
    last: datetime | None
    source: str


def candles_upsert(*, symbol: str, timeframe: Timeframe, candles: pd.DataFrame, source: str) -> UpsertResult:
    """Store candles, replacing stored bars with the same timestamp. Invalid OHLCV rows are logged, not stored.
    Safe to repeat and to run concurrently: the unique constraint makes every write an upsert."""
    valid, rejected = validate_candles(candles)
    valid = valid[~valid.index.duplicated(keep="last")].sort_index()
    if len(rejected):
        logger.warning(
            "candles_rejected",
            symbol=symbol,
            timeframe=timeframe.value,
            count=len(rejected),
            first=rejected.index[0].isoformat(),
        )
    if valid.empty:
        return UpsertResult(inserted=0, updated=0, rejected=len(rejected), first=None, last=None)
    write = _upsert_copy if connection.vendor == "postgresql" else _upsert_orm
    inserted, updated = write(
        symbol=symbol, timeframe=timeframe, candles=valid, source=source, now=timezone.now()
    )
    CANDLES_SYNCED.labels(source, timeframe.value, "inserted").inc(inserted)
    CANDLES_SYNCED.labels(source, timeframe.value, "updated").inc(updated)
    result = UpsertResult(
        inserted=inserted,
        updated=updated,
        rejected=len(rejected),
        first=valid.index[0].to_pydatetime(),
        last=valid.index[-1].to_pydatetime(),
    )
    if inserted or updated:
        events.announce(
            events.CandlesStored(
                symbol=symbol,
                timeframe=timeframe.value,
                first=result.first,
                last=result.last,
                inserted=inserted,
                updated=updated,
                source=source,
            )
        )
    return result


def _candle_rows(candles: pd.DataFrame):
    return zip(
        candles.index.to_pydatetime(),
        candles["open"].tolist(),
        candles["high"].tolist(),
        candles["low"].tolist(),
        candles["close"].tolist(),
        candles["volume"].tolist(),
        strict=True,
    )


_STAGE_SQL = """
CREATE TEMP TABLE IF NOT EXISTS market_candle_stage (
    "timestamp" timestamptz NOT NULL, open_price float8 NOT NULL, high_price float8 NOT NULL,
    low_price float8 NOT NULL, close_price float8 NOT NULL, volume int8 NOT NULL
) ON COMMIT DROP;
TRUNCATE market_candle_stage
"""
_MERGE_SQL = """
WITH written AS (
    INSERT INTO market_marketdata
        (symbol, timeframe, "timestamp", open_price, high_price, low_price, close_price, volume, source, updated_at)
    SELECT %(symbol)s, %(timeframe)s, "timestamp", open_price, high_price, low_price, close_price, volume,
           %(source)s, %(now)s
    FROM market_candle_stage
    ORDER BY "timestamp"  -- one lock order for concurrent writers
    ON CONFLICT (symbol, timeframe, "timestamp") DO UPDATE SET
        open_price = EXCLUDED.open_price, high_price = EXCLUDED.high_price, low_price = EXCLUDED.low_price,
        close_price = EXCLUDED.close_price, volume = EXCLUDED.volume, source = EXCLUDED.source,
        updated_at = EXCLUDED.updated_at
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM written
"""


def _upsert_copy(
    *, symbol: str, timeframe: Timeframe, candles: pd.DataFrame, source: str, now: datetime
) -> tuple[int, int]:
    """PostgreSQL: binary COPY into a temporary table, then one INSERT ... ON CONFLICT. About ten times faster
    than bulk_create for large batches (bench/README.md), and the counts are exact."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_STAGE_SQL)
        with cursor.cursor.copy("COPY market_candle_stage FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["timestamptz", "float8", "float8", "float8", "float8", "int8"])
            for row in _candle_rows(candles):
                copy.write_row(row)
        cursor.execute(
            _MERGE_SQL, {"symbol": symbol, "timeframe": timeframe.value, "source": source, "now": now}
        )
        inserted, updated = cursor.fetchone()
    return inserted, updated


def _upsert_orm(
    *, symbol: str, timeframe: Timeframe, candles: pd.DataFrame, source: str, now: datetime
) -> tuple[int, int]:
    """Any other database (SQLite in development): bulk_create with update_conflicts."""
    rows = [
        MarketData(
            symbol=symbol,
            timeframe=timeframe.value,
            timestamp=ts,
            open_price=o,
            high_price=h,
            low_price=lo,
            close_price=c,
            volume=v,
            source=source,
            updated_at=now,
        )
        for ts, o, h, lo, c, v in _candle_rows(candles)
    ]
    with transaction.atomic():
        existing = MarketData.objects.filter(
            symbol=symbol,
            timeframe=timeframe.value,
            timestamp__in=[row.timestamp for row in rows],
        ).count()
        MarketData.objects.bulk_create(
            rows,
            batch_size=_UPSERT_BATCH,
            update_conflicts=True,
            unique_fields=["symbol", "timeframe", "timestamp"],
            update_fields=_UPDATE_FIELDS,
        )
    return len(rows) - existing, existing


def _lookback_floor(timeframe: Timeframe, now: datetime) -> datetime | None:
    limit = timeframe.spec.max_lookback
    # A minute's margin so a window computed "now" is still inside the limit when the provider checks it.
    return now - limit + timedelta(minutes=1) if limit is not None else None


def check_lookback(*, timeframe: Timeframe, start: datetime | None, now: datetime | None = None) -> None:
    """Refuse a start further back than Yahoo serves this timeframe, naming the limit."""
    limit = timeframe.spec.max_lookback
    now = now or timezone.now()
    if start is not None and limit is not None and start < now - limit:
        raise LookbackExceeded(f"{timeframe.value} candles are available for the last {limit.days} days only")


def _coverage_extend(
    *, symbol: str, timeframe: Timeframe, start: datetime, end: datetime, source: str
) -> None:
    with transaction.atomic():
        coverage, created = CandleCoverage.objects.select_for_update().get_or_create(
            symbol=symbol,
            timeframe=timeframe.value,
            defaults={
                "covered_from": start,
                "covered_to": end,
                "last_synced_at": timezone.now(),
                "source": source,
            },
        )
        if not created:
            coverage.covered_from = min(coverage.covered_from, start)
            coverage.covered_to = max(coverage.covered_to, end)
            coverage.last_synced_at = timezone.now()
            coverage.source = source
            coverage.save(update_fields=["covered_from", "covered_to", "last_synced_at", "source"])


def _fetch_and_store(
    *, symbol: str, timeframe: Timeframe, start: datetime, end: datetime, provider: Provider
) -> UpsertResult:
    candles = provider.fetch_candles(symbol, timeframe, start=start, end=end)
    result = candles_upsert(symbol=symbol, timeframe=timeframe, candles=candles, source=provider.name)
    _coverage_extend(symbol=symbol, timeframe=timeframe, start=start, end=end, source=provider.name)
    if result.inserted or result.updated:
        market_version_bump(symbol)
    return result


def candles_sync(
    *, symbol: str, timeframe: Timeframe, days: int | None = None, provider: Provider | None = None
) -> SyncResult:
    """Fetch candles since the last stored one (with a small overlap) or, with `days` or for a new symbol, the
    last `days` days, and upsert them. Running it twice inserts nothing the second time."""
    provider = provider or get_provider()
    now = timezone.now()
    if days is not None:
        start = now - timedelta(days=days)
        check_lookback(timeframe=timeframe, start=start, now=now)
    else:
        last = MarketData.objects.filter(symbol=symbol, timeframe=timeframe.value).aggregate(
            last=Max("timestamp")
        )["last"]
        start = last - OVERLAP[timeframe] if last else now - timedelta(days=DEFAULT_DAYS[timeframe])
    floor = _lookback_floor(timeframe, now)
    if floor is not None:
        start = max(start, floor)
    result = _fetch_and_store(symbol=symbol, timeframe=timeframe, start=start, end=now, provider=provider)
    logger.info(
        "candles_synced",
        symbol=symbol,
        timeframe=timeframe.value,
        inserted=result.inserted,
        updated=result.updated,
        source=provider.name,
    )
    return SyncResult(
        symbol=symbol,
        timeframe=timeframe.value,
        inserted=result.inserted,
        updated=result.updated,
        rejected=result.rejected,
        first=result.first,
        last=result.last,
        source=provider.name,
    )


def quote_store(*, quote: Quote, is_open: bool) -> dict:
    """Cache a freshly fetched quote (briefly while the exchange is open) and announce it; returns its payload
    in the quote endpoint's shape."""
    payload = asdict(quote)
    payload["timestamp"] = quote.timestamp.isoformat()
    payload["stale"] = False
    ttl = settings.QUOTE_CACHE_TTL_OPEN if is_open else settings.MARKET_DATA_CACHE_TTL
    cache.set(quote_key(quote.symbol), payload, ttl)
    events.announce(events.QuoteRefreshed(symbol=quote.symbol, quote=payload))
    return payload


@dataclass(frozen=True, kw_only=True)
class QuotesRefreshResult:
    refreshed: list[str]
    missing: list[str]
    requests: int


def quotes_refresh(*, symbols: list[str], provider: Provider | None = None) -> QuotesRefreshResult:
    """Fetch quotes for many symbols in batches (one provider call per batch of QUOTE_BATCH_SIZE), cache and
    announce each. Symbols the provider has no quote for are reported in `missing`, never fail the others."""
    provider = provider or get_provider()
    is_open = get_calendar().status(timezone.now()).is_open
    wanted = sorted(set(symbols))
    size = max(1, settings.QUOTE_BATCH_SIZE)
    refreshed: list[str] = []
    requests = 0
    for index in range(0, len(wanted), size):
        quotes = provider.fetch_quotes(wanted[index : index + size])
        requests += 1
        for symbol, quote in quotes.items():
            quote_store(quote=quote, is_open=is_open)
            refreshed.append(symbol)
    missing = sorted(set(wanted) - set(refreshed))
    logger.info("quotes_refreshed", refreshed=len(refreshed), missing=len(missing), requests=requests)
    return QuotesRefreshResult(refreshed=sorted(refreshed), missing=missing, requests=requests)


@dataclass(frozen=True, kw_only=True)
class EnsureResult:
    fetched: bool
    stale: bool
    stale_reason: str | None = None


def candles_ensure(
    *,
    symbol: str,
    timeframe: Timeframe,
    start: datetime | None,
    end: datetime | None,
    provider: Provider | None = None,
    freshness: timedelta = timedelta(minutes=5),
) -> EnsureResult:
    """Make sure the requested range is stored: fetch what was never fetched (once) and refresh a stale tail.

    When the provider is down but candles are stored, they are served marked stale; when nothing is stored,
    the provider's error propagates (404 for an unknown symbol, 503 for an outage)."""
    now = timezone.now()
    check_lookback(timeframe=timeframe, start=start, now=now)
    coverage = CandleCoverage.objects.filter(symbol=symbol, timeframe=timeframe.value).first()
    want_to = min(end, now) if end is not None else now
    windows: list[tuple[datetime, datetime]] = []
    if coverage is None:
        want_from = start or now - timedelta(days=DEFAULT_DAYS[timeframe])
        if want_from < want_to:
            windows.append((want_from, want_to))
    else:
        if start is not None and start < coverage.covered_from:
            windows.append((start, coverage.covered_from))
        tail_missing = want_to > coverage.covered_to + timeframe.spec.bar
        if tail_missing and coverage.last_synced_at < now - freshness:
            windows.append((coverage.covered_to - OVERLAP[timeframe], want_to))
    if not windows:
        return EnsureResult(fetched=False, stale=False)
    provider = provider or get_provider()
    floor = _lookback_floor(timeframe, now)
    try:
        for window_start, window_end in windows:
            if floor is not None:
                window_start = max(window_start, floor)
            if window_start < window_end:
                _fetch_and_store(
                    symbol=symbol, timeframe=timeframe, start=window_start, end=window_end, provider=provider
                )
    except ProviderUnavailable as exc:
        if not MarketData.objects.filter(symbol=symbol, timeframe=timeframe.value).exists():
            raise
        logger.warning("serving_stale_candles", symbol=symbol, timeframe=timeframe.value, error=str(exc))
        return EnsureResult(fetched=False, stale=True, stale_reason=str(exc))
    except SymbolNotFound:
        if coverage is None:
            raise
        return EnsureResult(fetched=False, stale=False)
    return EnsureResult(fetched=True, stale=False)


def holidays_load_csv(*, path: Path | str, exchange: str = "NSE") -> tuple[int, int]:
    """Load an exchange's published holiday list (CSV: date,description). Returns (created, updated)."""
    holidays = load_holidays_csv(path)
    created = updated = 0
    with transaction.atomic():
        for day, description in sorted(holidays.items()):
            _, was_created = MarketHoliday.objects.update_or_create(
                exchange=exchange, date=day, defaults={"description": description}
            )
            created += was_created
            updated += not was_created
    holidays_invalidate(exchange)
    return created, updated
