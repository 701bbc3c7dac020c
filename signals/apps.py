from django.apps import AppConfig


class SignalsConfig(AppConfig):
    name = "signals"
    verbose_name = "Signals"

    def ready(self) -> None:
        from signals import receivers
        from tradingdash import events

        events.subscribe(events.CandlesStored, receivers.signals_on_candles)
