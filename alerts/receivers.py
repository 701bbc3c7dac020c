"""Handlers of tradingdash.events, subscribed in AlertsConfig.ready: cheap, they only enqueue after commit, and
only when some active alert could fire (one indexed query), so data without alerts costs no task."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from alerts.models import THRESHOLD_KINDS, Alert, AlertKind
from alerts.rules import candles_feed_price_alerts
from market.timeframes import Timeframe
from tradingdash.events import CandlesStored, PredictionStored, QuoteRefreshed, SignalCreated, UserReactivated


def on_quote(event: QuoteRefreshed) -> None:
    from alerts.tasks import evaluate_quote

    if not _watched(event.symbol, THRESHOLD_KINDS):
        return
    quote = event.quote
    # The quote's own time orders the evaluation: a late task with an older quote must not win.
    observed_at = quote_observed_at(quote.get("timestamp"), now=timezone.now())
    args = (event.symbol, quote.get("price"), quote.get("change_percent"), observed_at, quote.get("source"))
    transaction.on_commit(lambda: evaluate_quote.delay(*args), robust=True)


def quote_observed_at(timestamp: str | None, *, now: datetime) -> str | None:
    """As of when a quote's price held. Providers stamp a quote with its daily bar's open (00:00 of its trading
    day) all day long, so a quote of a forming day is as of now, when it was fetched, and one of a finished day as
    of that day's end, as stored bars are (alerts.selectors.latest_price): live quotes then order after the
    intraday bars of the morning, and two crossings in a day are two firings."""
    if not timestamp:
        return None
    return min(datetime.fromisoformat(timestamp) + Timeframe.D1.spec.bar, now).isoformat()


def on_candles(event: CandlesStored) -> None:
    from alerts.tasks import evaluate_candles

    if not candles_feed_price_alerts(event.timeframe):
        return
    if (event.inserted or event.updated) and _watched(event.symbol, THRESHOLD_KINDS):
        transaction.on_commit(lambda: evaluate_candles.delay(event.symbol, event.timeframe), robust=True)


def on_signal(event: SignalCreated) -> None:
    from alerts.tasks import evaluate_signal

    if _watched(event.symbol, [AlertKind.SIGNAL]):
        transaction.on_commit(lambda: evaluate_signal.delay(event.signal_id), robust=True)


def on_prediction(event: PredictionStored) -> None:
    from alerts.tasks import evaluate_prediction

    if event.scored and _watched(event.symbol, [AlertKind.PREDICTION_MISS]):
        transaction.on_commit(lambda: evaluate_prediction.delay(event.prediction_id), robust=True)


def on_user_reactivated(event: UserReactivated) -> None:
    """Their alerts watch again from now: nothing was watching the bars stored while the user was inactive, and
    a sync storing them later must not page for every crossing among them. One indexed update, in the
    reactivation's own transaction."""
    from alerts.services import alerts_watch_from_now

    with transaction.atomic():  # a savepoint: should it fail, the admin's own transaction goes on
        alerts_watch_from_now(user_id=event.user_id)


def _watched(symbol: str, kinds) -> bool:
    return Alert.objects.filter(
        symbol=symbol, kind__in=list(kinds), active=True, user__is_active=True
    ).exists()
