"""Celery tasks for market data: thin wrappers that take plain values and call services."""

from __future__ import annotations

from dataclasses import asdict

import structlog
from celery import shared_task
from django.utils import timezone

from market.models import Instrument
from market.providers.errors import ProviderUnavailable, RateLimited
from market.services import candles_sync
from market.sources import get_calendar
from market.timeframes import Timeframe

logger = structlog.get_logger(__name__)


@shared_task(
    name="market.sync_symbol",
    autoretry_for=(ProviderUnavailable, RateLimited),
    retry_backoff=30,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
    acks_late=True,
)
def sync_symbol(symbol: str, timeframe: str, days: int | None = None) -> dict:
    """Safe to run twice: the sync upserts."""
    result = candles_sync(symbol=symbol, timeframe=Timeframe.parse(timeframe), days=days)
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
