"""Thin tasks: evaluation where data arrives (enqueued by the data events after commit) and delivery.

An evaluation that meets a passing database failure (a restart, a dropped connection) is retried with backoff
instead of dropped: the value it carried would otherwise be evaluated by nobody until the next quote or bar, and
a crossing it held could be missed. Retrying is safe: each alert is locked while it is decided, a crossing's key
is unique, and a value older than the newest the alert has seen is skipped (alerts.services)."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task
from django.db import InterfaceError, OperationalError

from alerts.rules import candles_feed_price_alerts
from alerts.selectors import bars_to_evaluate
from alerts.services import (
    alerts_evaluate_bars,
    alerts_evaluate_prediction,
    alerts_evaluate_price,
    alerts_evaluate_signal,
    deliveries_requeue_overdue,
    delivery_attempt,
)

# Passing database failures: retried (5 times, backoff from 5 s, at most 2 minutes apart).
_RETRY_DB = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 5,
    "retry_backoff_max": 120,
    "max_retries": 5,
}


@shared_task(name="alerts.evaluate_quote", acks_late=True, expires=300, **_RETRY_DB)
def evaluate_quote(
    symbol: str,
    price: float | None,
    change_pct: float | None,
    observed_at: str | None,
    source: str | None = None,
) -> list[int]:
    when = datetime.fromisoformat(observed_at) if observed_at else None
    return alerts_evaluate_price(
        symbol=symbol, price=price, change_pct=change_pct, observed_at=when, source=source
    )


@shared_task(name="alerts.evaluate_candles", acks_late=True, expires=300, **_RETRY_DB)
def evaluate_candles(symbol: str, timeframe: str) -> list[int]:
    if not candles_feed_price_alerts(timeframe):
        return []
    return alerts_evaluate_bars(symbol=symbol, bars=bars_to_evaluate(symbol=symbol, timeframe=timeframe))


@shared_task(name="alerts.evaluate_signal", acks_late=True, **_RETRY_DB)
def evaluate_signal(signal_id: int) -> list[int]:
    return alerts_evaluate_signal(signal_id=signal_id)


@shared_task(name="alerts.evaluate_prediction", acks_late=True, **_RETRY_DB)
def evaluate_prediction(prediction_id: int) -> list[int]:
    return alerts_evaluate_prediction(prediction_id=prediction_id)


@shared_task(bind=True, name="alerts.deliver", acks_late=True, max_retries=None)
def deliver(self, delivery_id: int, attempt: int | None = None) -> str:
    """Try `attempt` (the tries made before it); transient failures come back with exponential backoff until
    ALERT_DELIVERY_MAX_AGE, each retry carrying its own number, so a redelivered copy sends nothing."""
    outcome = delivery_attempt(delivery_id=delivery_id, attempt=attempt)
    if outcome.retry_in is not None:
        raise self.retry(args=(delivery_id, outcome.attempts), countdown=outcome.retry_in)
    return outcome.state


@shared_task(name="alerts.requeue_overdue_deliveries", acks_late=True, expires=240)
def requeue_overdue_deliveries() -> int:
    return deliveries_requeue_overdue()
