from datetime import UTC, datetime, timedelta

import factory

from predictions.models import Prediction, TrainedModel


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


class TrainedModelFactory(factory.django.DjangoModelFactory):
    """A stored svr 1-day horizon-1 version of TCS.NS, inactive unless a test says so, with no metrics and an
    artifact path that is never loaded (a test that predicts with a model trains it). Each new version of a key
    takes the next number, as training does."""

    class Meta:
        model = TrainedModel

    symbol = "TCS.NS"
    timeframe = "1D"
    horizon = 1
    algorithm = "svr"
    version = factory.LazyAttribute(
        lambda m: (
            TrainedModel.objects.filter(
                symbol=m.symbol, timeframe=m.timeframe, horizon=m.horizon, algorithm=m.algorithm
            ).count()
            + 1
        )
    )
    data_start = datetime(2026, 1, 1, tzinfo=UTC)
    data_end = datetime(2026, 1, 1, tzinfo=UTC)
    n_samples = 100
    artifact = factory.LazyAttribute(lambda m: f"models/{m.algorithm}.joblib")
    artifact_sha256 = "0" * 64
    is_active = False


def record_default_choice(
    *, symbol: str = "TCS.NS", timeframe: str = "1D", horizon: int = 1, beats: bool = True, **figures
) -> dict:
    """Store on every active version of the key what training records as `default_selection`: the out-of-sample
    figures of choosing the default among exactly those versions (by default, a choice that beats naive)."""
    active = TrainedModel.objects.filter(symbol=symbol, timeframe=timeframe, horizon=horizon, is_active=True)
    selection = {
        "mae_vs_naive": 0.93 if beats else 1.01,
        "dm_stat": -2.5 if beats else 0.3,
        "dm_p_value": 0.02 if beats else 0.6,
        "directional_accuracy": 0.57,
        "n_samples": 400,
        "picks": [],
        "candidates": sorted(active.values_list("pk", flat=True)),
        **figures,
    }
    for model in active:
        TrainedModel.objects.filter(pk=model.pk).update(
            metrics={**model.metrics, "default_selection": selection}
        )
    return selection
