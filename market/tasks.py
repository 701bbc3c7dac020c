"""Celery tasks for market data: thin wrappers that take plain values and call services."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta

import structlog
from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.utils import timezone

from market.calendar import UnknownExchange
from market.models import Instrument
from market.partitions import candle_partitions_ensure
from market.providers.errors import ProviderUnavailable, RateLimited
from market.services import (
    candles_sync,
    quality_repair,
    rendered_months_refresh_all,
    sync_batch_run,
    sync_run_plan,
    sync_run_resume,
)
from market.sources import calendar_for
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
def sync_watchlist(
    timeframes: list[str] | None = None,
    only_when_open: bool = False,
    grace_minutes: int = 0,
    after_close_minutes: int = 0,
) -> dict:
    """Enqueue one sync per active instrument and timeframe. With `only_when_open`, only instruments whose
    exchange (per its own calendar, special sessions included) is in session, or closed less than
    `grace_minutes` ago; with `after_close_minutes` too, only those whose session closed between that many
    and `grace_minutes` minutes ago: the run just after a close fetches the day's last bars once they are
    final. Days without a session are skipped."""
    timeframes = timeframes or [Timeframe.D1.value]
    instruments = Instrument.objects.filter(active=True).values_list("symbol", "exchange")
    symbols = [symbol for symbol, _ in instruments]
    if only_when_open:
        now = timezone.now()
        grace, settle = timedelta(minutes=grace_minutes), timedelta(minutes=after_close_minutes)
        in_session = {
            exchange: _in_session(exchange, now, grace, settle) for exchange in {e for _, e in instruments}
        }
        symbols = [symbol for symbol, exchange in instruments if in_session[exchange]]
        if not symbols:
            logger.info("sync_watchlist_skipped", reason="market closed")
            return {"enqueued": 0, "skipped": "market closed"}
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


@shared_task(name="market.ensure_candle_partitions")
def ensure_candle_partitions() -> dict:
    """Daily: the candle table's partitions of the coming months exist, and the default partition is emptied
    into partitions of its own. Idempotent; nothing to do off PostgreSQL."""
    return asdict(candle_partitions_ensure())


@shared_task(name="market.render_stale_months")
def render_stale_months() -> dict:
    """Every quarter of an hour: render again the months of daily bars written other than by an upsert (staff
    edits and deletions, rows stored before the rendered months existed) or rendered at a tick or in a zone the
    catalogue no longer gives (market.models.RenderedMonth). Reads stay right meanwhile, only slower: they
    render such months themselves. Idempotent; nothing to do off PostgreSQL."""
    return {"rendered": rendered_months_refresh_all()}


@shared_task(name="market.sync_run_batch", bind=True, max_retries=5, acks_late=True)
def sync_run_batch(self, batch_id: int) -> dict:
    """One batch of a whole-market run. Safe to run twice: a batch is claimed before it runs, done batches are
    skipped and writes are upserts. Symbols that hit an outage or rate limit are retried (only they) with the
    sync backoff; after the last retry the batch is recorded failed and resuming the run tries it again."""
    result = sync_batch_run(batch_id=batch_id, last_attempt=self.request.retries >= self.max_retries)
    if result.retry and result.status == "pending":
        countdown = get_exponential_backoff_interval(
            factor=settings.MARKET_SYNC_RETRY_BACKOFF,
            retries=self.request.retries,
            maximum=settings.MARKET_SYNC_RETRY_BACKOFF_MAX,
            full_jitter=True,
        )
        raise self.retry(countdown=countdown)
    return asdict(result)


@shared_task(name="market.sync_all")
def sync_all(
    timeframes: list[str] | None = None, days: int | None = None, closed_within_hours: int = 24
) -> dict:
    """Nightly: a whole-market run per timeframe over the active instruments whose exchange closed a session in
    the last `closed_within_hours` (its own calendar: an exchange on holiday or a weekend is left out), batched
    and spread over the workers."""
    timeframes = timeframes or [Timeframe.D1.value]
    now = timezone.now()
    instruments = list(Instrument.objects.filter(active=True).values_list("symbol", "exchange"))
    window = timedelta(hours=closed_within_hours)
    closed = {exchange: _closed_within(exchange, now, window) for exchange in {e for _, e in instruments}}
    symbols = [symbol for symbol, exchange in instruments if closed[exchange]]
    if not symbols:
        logger.info("sync_all_skipped", reason="no session closed")
        return {"runs": [], "skipped": "no session closed"}
    runs = []
    for timeframe in timeframes:
        run = sync_run_plan(timeframe=Timeframe.parse(timeframe), symbols=symbols, days=days, trigger="beat")
        sync_run_resume(run_id=run.pk)
        runs.append(run.pk)
    return {"runs": runs, "symbols": len(symbols), "timeframes": timeframes}


def _closed_within(exchange: str, now: datetime, window: timedelta) -> bool:
    """The exchange's latest session closed at most `window` before `now` (per its calendar)."""
    try:
        calendar = calendar_for(exchange)
    except UnknownExchange as exc:
        logger.warning("sync_all_unknown_exchange", exchange=exchange, error=str(exc))
        return False
    today = now.astimezone(calendar.tz).date()
    day = today if calendar.is_trading_day(today) else calendar.previous_trading_day(today)
    if calendar.session_close(day) > now:
        day = calendar.previous_trading_day(day)
    return now - calendar.session_close(day) <= window


def _in_session(exchange: str, now: datetime, grace: timedelta, settle: timedelta = timedelta(0)) -> bool:
    """The exchange is open at `now` (when `settle` is zero), or its session today closed between `settle` and
    `grace` ago. An exchange without a calendar (a catalogue typo) counts as closed, logged, rather than
    stopping every other instrument's sync."""
    try:
        calendar = calendar_for(exchange)
    except UnknownExchange as exc:
        logger.warning("sync_watchlist_unknown_exchange", exchange=exchange, error=str(exc))
        return False
    if not settle and calendar.status(now).is_open:
        return True
    today = now.astimezone(calendar.tz).date()
    if not calendar.is_trading_day(today):
        return False
    closed_at = calendar.session_close(today)
    return closed_at + settle <= now < closed_at + grace
