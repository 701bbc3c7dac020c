"""Handlers of tradingdash.events, subscribed in AlertsConfig.ready: cheap, they only enqueue after commit."""

from __future__ import annotations

from django.db import transaction

from tradingdash.events import CandlesStored, PredictionStored, QuoteRefreshed, SignalCreated


def on_quote(event: QuoteRefreshed) -> None:
    from alerts.tasks import evaluate_quote

    quote = event.quote
    args = (event.symbol, quote.get("price"), quote.get("change_percent"), None)
    transaction.on_commit(lambda: evaluate_quote.delay(*args), robust=True)


def on_candles(event: CandlesStored) -> None:
    from alerts.tasks import evaluate_candles

    if event.inserted or event.updated:
        transaction.on_commit(lambda: evaluate_candles.delay(event.symbol, event.timeframe), robust=True)


def on_signal(event: SignalCreated) -> None:
    from alerts.tasks import evaluate_signal

    transaction.on_commit(lambda: evaluate_signal.delay(event.signal_id), robust=True)


def on_prediction(event: PredictionStored) -> None:
    from alerts.tasks import evaluate_prediction

    if event.scored:
        transaction.on_commit(lambda: evaluate_prediction.delay(event.prediction_id), robust=True)
