"""The live quote refresher: thin, scheduled every QUOTE_REFRESH_SECONDS by beat (tradingdash/schedule.py)."""

from __future__ import annotations

from dataclasses import asdict

import structlog
from celery import shared_task
from django.utils import timezone

from market.providers.errors import ProviderUnavailable, RateLimited
from market.services import quotes_refresh
from market.sources import get_calendar
from stream.selectors import instruments_exchanges, symbols_to_refresh

logger = structlog.get_logger(__name__)


@shared_task(name="stream.refresh_quotes", acks_late=True)
def refresh_quotes(only_when_open: bool = True) -> dict:
    """Refresh the quotes of watched and live-subscribed symbols whose exchange is open now (any exchange's with
    `only_when_open=False`, for an operator), in batches; each refreshed quote is announced (QuoteRefreshed) and
    so streamed. Not retried: the next period refreshes again, and an outage shows as a stale feed."""
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
