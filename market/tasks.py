"""Celery tasks for market data: thin wrappers that take plain values and call services."""

from __future__ import annotations

from dataclasses import asdict

import structlog
from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.utils import timezone

from market.models import Instrument
from market.providers.errors import ProviderUnavailable, RateLimited
from market.services import candles_sync, quality_repair
from market.sources import get_calendar
from market.timeframes import Timeframe

logger = structlog.get_logger(__name__)


@shared_task(name="market.sync_symbol", bind=True, max_retries=5, acks_late=True)
def sync_symbol(self, symbol: str, timeframe: str, days: int | None = None) -> dict:
    """Safe to run twice: the sync upserts. Provider outages and rate limits (only those) are retried, with
    jittered backoff doubling from MARKET_SYNC_RETRY_BACKOFF seconds up to MARKET_SYNC_RETRY_BACKOFF_MAX."""
    try:
        result = candles_sync(symbol=symbol, timeframe=Timeframe.parse(timeframe), days=days)
    except (ProviderUnavailable, RateLimited) as exc:
        countdown = get_exponential_backoff_interval(
            factor=settings.MARKET_SYNC_RETRY_BACKOFF,
            retries=self.request.retries,
            maximum=settings.MARKET_SYNC_RETRY_BACKOFF_MAX,
            full_jitter=True,
        )
        raise self.retry(exc=exc, countdown=countdown) from exc
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in asdict(result).items()}


@shared_task(name="market.sync_watchlist")
def sync_watchlist(timeframes: list[str] | None = None, only_when_open: bool = False) -> dict:
    """Enqueue one sync per active instrument and timeframe. With `only_when_open`, do nothing outside NSE
    sessions (the 5-minute intraday schedule runs on weekdays; holidays are skipped here)."""
    timeframes = timeframes or [Timeframe.D1.value]
    if only_when_open and not get_calendar().status(timezone.now()).is_open:
        logger.info("sync_watchlist_skipped", reason="market closed")
        return {"enqueued": 0, "skipped": "market closed"}
    symbols = list(Instrument.objects.filter(active=True).values_list("symbol", flat=True))
    for symbol in symbols:
        for timeframe in timeframes:
            sync_symbol.apply_async(args=[symbol, timeframe], expires=600)
    logger.info("sync_watchlist_enqueued", symbols=len(symbols), timeframes=timeframes)
    return {"enqueued": len(symbols) * len(timeframes), "symbols": symbols, "timeframes": timeframes}


@shared_task(name="market.repair_symbol", bind=True, max_retries=3, acks_late=True)
def repair_symbol(self, symbol: str, timeframe: str) -> dict:
    """Check one symbol's candles and re-fetch the missing sessions the provider can supply. Idempotent."""
    try:
        result = quality_repair(symbol=symbol, timeframe=Timeframe.parse(timeframe))
    except (ProviderUnavailable, RateLimited) as exc:
        raise self.retry(exc=exc, countdown=settings.MARKET_SYNC_RETRY_BACKOFF) from exc
    return asdict(result)


@shared_task(name="market.repair_watchlist")
def repair_watchlist(timeframes: list[str] | None = None) -> dict:
    """Nightly: one check-and-repair task per active instrument and timeframe."""
    timeframes = timeframes or [Timeframe.D1.value]
    symbols = list(Instrument.objects.filter(active=True).values_list("symbol", flat=True))
    for symbol in symbols:
        for timeframe in timeframes:
            repair_symbol.apply_async(args=[symbol, timeframe], expires=6 * 3600)
    return {"enqueued": len(symbols) * len(timeframes)}
