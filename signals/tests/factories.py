from datetime import UTC, datetime

import factory

from signals.models import TradingSignal


class TradingSignalFactory(factory.django.DjangoModelFactory):
    """A stored BUY signal of TCS.NS on a daily bar, with its levels; override what a test is about."""

    class Meta:
        model = TradingSignal

    symbol = "TCS.NS"
    timeframe = "1D"
    signal_type = "BUY"
    strength = 0.5
    score = 0.5
    entry_price = 100.0
    price_target = 110.0
    stop_loss = 95.0
    candle_timestamp = datetime(2026, 6, 3, 6, 30, tzinfo=UTC)
    reasoning = "test"
    factors = factory.LazyFunction(list)
