"""Celery signal receivers, connected in MarketConfig.ready. They count every project task, not only
market's: market is the app every other app builds on, so it is loaded wherever tasks run."""

from __future__ import annotations

from tradingdash.metrics import TASK_FAILURES


def count_task_failure(sender=None, **kwargs) -> None:
    """A task failed for good (a retried task ends up here only once its retries are exhausted)."""
    TASK_FAILURES.labels(getattr(sender, "name", None) or "unknown").inc()
