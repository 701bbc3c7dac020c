from django.apps import AppConfig


class ChartsConfig(AppConfig):
    """Staff chart pages in the admin: candles, signals, predictions, levels and the backtest of one instrument."""

    name = "charts"
    verbose_name = "Charts"
