"""Celery signal receivers, connected in MarketConfig.ready. They count every project task, not only
market's: market is the app every other app builds on, so it is loaded wherever tasks run."""

from __future__ import annotations

from django.conf import settings

from market.providers.patience import set_patience
from tradingdash.metrics import TASK_FAILURES


def count_task_failure(sender=None, **kwargs) -> None:
    """A task failed for good (a retried task ends up here only once its retries are exhausted)."""
    TASK_FAILURES.labels(getattr(sender, "name", None) or "unknown").inc()


def task_patience_start(sender=None, **kwargs) -> None:
    """Tasks may wait longer than web requests for the provider's request budget; not the compute task, which
    serves a web request waiting for its answer (tradingdash.offload): it keeps a request's patience, so a
    rate-limited quote is a prompt 503 with Retry-After, not a wait past the request's COMPUTE_TIMEOUT."""
    from tradingdash.offload import TASK_NAME

    if getattr(sender, "name", None) == TASK_NAME:
        set_patience(None)
        return
    set_patience(settings.YFINANCE_LIMITER_TASK_MAX_WAIT_SECONDS)


def task_patience_end(sender=None, **kwargs) -> None:
    set_patience(None)


def offloaded_answered(kwargs: dict) -> None:
    """A compute worker answered this web worker's call about `symbol` (tradingdash.offload): a fetch or sync
    there bumped the symbol's version in Redis, which a write here would also have put in this process's copy."""
    from market.caching import market_version_forget

    symbols = [kwargs.get("symbol"), *(kwargs.get("symbols") or [])]
    for symbol in symbols:
        if isinstance(symbol, str):
            market_version_forget(symbol)
