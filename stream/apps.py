from django.apps import AppConfig


class StreamConfig(AppConfig):
    name = "stream"
    verbose_name = "Live stream"

    def ready(self) -> None:
        from stream import receivers
        from tradingdash import events

        events.subscribe(events.QuoteRefreshed, receivers.stream_on_quote)
        events.subscribe(events.CandlesStored, receivers.stream_on_candles)
        events.subscribe(events.SignalCreated, receivers.stream_on_signal)
        events.subscribe(events.PredictionStored, receivers.stream_on_prediction)
        events.subscribe(events.TaskUpdated, receivers.stream_on_task)
