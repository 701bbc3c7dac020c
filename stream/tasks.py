"""The live quote refresher: thin, scheduled every QUOTE_REFRESH_SECONDS by beat (tradingdash/schedule.py)."""

from __future__ import annotations

import uuid
from dataclasses import asdict

import structlog
from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

from market.providers.errors import ProviderUnavailable, RateLimited
from market.services import quotes_refresh
from market.sources import get_calendar
from stream.selectors import instruments_exchanges, symbols_to_refresh
from tradingdash.cache import cache_is_down

logger = structlog.get_logger(__name__)


REFRESH_LEASE_KEY = "stream:refresh-quotes:lease"
REFRESH_LEASE_SECONDS = 600


# A run ends before its lease lapses (the soft limit raises in it, and the lease is released), never to be
# joined by the next ones while it still waits on the request budget.
@shared_task(
    name="stream.refresh_quotes",
    acks_late=True,
    soft_time_limit=REFRESH_LEASE_SECONDS - 60,
    time_limit=REFRESH_LEASE_SECONDS,
)
def refresh_quotes(only_when_open: bool = True) -> dict:
    """Refresh the quotes of watched and live-subscribed symbols whose exchange is open now (any exchange's with
    `only_when_open=False`, for an operator), in batches; each refreshed quote is announced (QuoteRefreshed) and
    so streamed. Not retried: the next period refreshes again, and an outage shows as a stale feed. One at a
    time: a run that waits on the provider's request budget (up to YFINANCE_LIMITER_TASK_MAX_WAIT_SECONDS a batch)
    outlasts its period, and the next ones, started beside it, spent the same budget on the same symbols and held
    more worker slots; they now return at once while it runs (a lease of REFRESH_LEASE_SECONDS, so a worker lost
    mid-run holds it no longer, and a run is stopped before it lapses). Without Redis there is no lease, and no
    broker to start a second run either."""
    token = uuid.uuid4().hex
    if not cache.add(REFRESH_LEASE_KEY, token, REFRESH_LEASE_SECONDS) and not cache_is_down():
        return {"refreshed": [], "missing": [], "requests": 0, "skipped": "a refresh is already running"}
    try:
        return _refresh(only_when_open)
    finally:
        if cache.get(REFRESH_LEASE_KEY) == token:
            cache.delete(REFRESH_LEASE_KEY)


def _refresh(only_when_open: bool) -> dict:
    wanted = sorted(symbols_to_refresh())
    exchanges = instruments_exchanges(wanted)
    now = timezone.now()
    open_exchanges = {
        ex for ex in set(exchanges.values()) if not only_when_open or get_calendar(ex).status(now).is_open
    }
    symbols = [symbol for symbol in wanted if exchanges.get(symbol) in open_exchanges]
    if not symbols:
        return {"refreshed": [], "missing": [], "requests": 0, "skipped": "no open exchange"}
    try:
        result = quotes_refresh(symbols=symbols)
    except (ProviderUnavailable, RateLimited) as exc:
        logger.warning("quote_refresh_failed", symbols=len(symbols), error=str(exc))
        return {"refreshed": [], "missing": symbols, "requests": 0, "error": str(exc)}
    return asdict(result)
