from datetime import UTC, datetime, timedelta

import factory

from predictions.models import Prediction


class PredictionFactory(factory.django.DjangoModelFactory):
    """A system (requested_by None) naive 1-day prediction of TCS.NS, not yet scored; its interval is the predicted
    price ± 3.5 and its target the next day unless a test says otherwise."""

    class Meta:
        model = Prediction

    symbol = "TCS.NS"
    timeframe = "1D"
    horizon = 1
    time_horizon = factory.LazyAttribute(lambda p: f"{p.timeframe} x {p.horizon}")
    model_used = "naive"
    model_version = factory.LazyAttribute(lambda p: p.model_used)
    predicted_price = 123.45
    lower_bound = factory.LazyAttribute(lambda p: p.predicted_price - 3.5)
    upper_bound = factory.LazyAttribute(lambda p: p.predicted_price + 3.5)
    base_price = 100.0
    base_timestamp = datetime(2026, 6, 3, 6, 30, tzinfo=UTC)
    target_time = factory.LazyAttribute(lambda p: p.base_timestamp + timedelta(days=1))
