from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self) -> None:
        from alerts import receivers
        from tradingdash import events

        events.subscribe(events.QuoteRefreshed, receivers.on_quote)
        events.subscribe(events.CandlesStored, receivers.on_candles)
        events.subscribe(events.SignalCreated, receivers.on_signal)
        events.subscribe(events.PredictionStored, receivers.on_prediction)
        events.subscribe(events.UserReactivated, receivers.on_user_reactivated)
