from django.apps import AppConfig


class TradingdashConfig(AppConfig):
    """The project package as an app, for its system checks (tradingdash/checks.py); it has no models."""

    name = "tradingdash"
    verbose_name = "tradingdash"

    def ready(self) -> None:
        from tradingdash import checks  # noqa: F401 - registers the checks
