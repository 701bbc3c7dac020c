"""Handlers of tradingdash.events, subscribed in StreamConfig.ready. They run in the announcer's process and
transaction, so they only publish, and only once that transaction has committed (a rolled-back signal is never
streamed). A failing publish is logged by `publish` and never reaches the announcer."""

from __future__ import annotations

from django.db import transaction

from stream import messages
from stream.publish import publish_to_symbol, publish_to_user
from tradingdash import events


def stream_on_quote(event: events.QuoteRefreshed) -> None:
    def send() -> None:
        message = messages.quote_message(symbol=event.symbol, quote=event.quote)
        publish_to_symbol(topic="quote", symbol=event.symbol, message=message)

    transaction.on_commit(send, robust=True)


def stream_on_candles(event: events.CandlesStored) -> None:
    if event.first is None or event.last is None:
        return

    def send() -> None:
        for message in messages.candle_messages(
            symbol=event.symbol, timeframe=event.timeframe, first=event.first, last=event.last
        ):
            publish_to_symbol(topic="candle", symbol=event.symbol, message=message)

    transaction.on_commit(send, robust=True)


def stream_on_signal(event: events.SignalCreated) -> None:
    def send() -> None:
        message = messages.signal_message(signal_id=event.signal_id)
        if message is not None:
            publish_to_symbol(topic="signal", symbol=event.symbol, message=message)

    transaction.on_commit(send, robust=True)


def stream_on_prediction(event: events.PredictionStored) -> None:
    def send() -> None:
        message = messages.prediction_message(prediction_id=event.prediction_id, scored=event.scored)
        if message is None:
            return
        if event.user_id is None:  # a system prediction (made for signals) is public
            publish_to_symbol(topic="prediction", symbol=event.symbol, message=message)
        else:  # a user's prediction is theirs alone, as on the detail endpoint
            publish_to_user(event.user_id, message)

    transaction.on_commit(send, robust=True)


def stream_on_task(event: events.TaskUpdated) -> None:
    if event.user_id is None:
        return

    def send() -> None:
        message = messages.task_message(
            task_id=event.task_id,
            name=event.name,
            state=event.state,
            progress=event.progress,
            stage=event.stage,
        )
        publish_to_user(event.user_id, message)

    transaction.on_commit(send, robust=True)
