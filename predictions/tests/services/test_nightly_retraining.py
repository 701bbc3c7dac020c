"""The nightly retraining keeps every active model current, not only the daily horizon-1 ones of the catalogue."""

import pytest

from market.models import Instrument
from market.services import candles_sync
from market.sources import get_provider
from market.timeframes import Timeframe
from predictions import tasks
from predictions.models import TrainedModel
from predictions.services import models_train
from predictions.tests.factories import TrainedModelFactory
from tradingdash.schedule import BEAT_SCHEDULE

pytestmark = pytest.mark.django_db


def _active(symbol: str, timeframe: str, horizon: int, algorithm: str, **hyperparameters) -> TrainedModel:
    return TrainedModelFactory(
        symbol=symbol,
        timeframe=timeframe,
        horizon=horizon,
        algorithm=algorithm,
        hyperparameters=hyperparameters,
        is_active=True,
    )


@pytest.fixture
def enqueued(monkeypatch):
    sent = []
    monkeypatch.setattr(tasks.train_models, "apply_async", lambda args, **kw: sent.append(tuple(args)))
    return sent


def _nightly() -> dict:
    return tasks.retrain_all(**BEAT_SCHEDULE["predictions-retrain-nightly"]["kwargs"])


def test_nightly_retraining_covers_every_timeframe_and_horizon_with_an_active_model(enqueued):
    Instrument.objects.update(active=False)
    Instrument.objects.filter(symbol="TCS.NS").update(active=True)
    _active("TCS.NS", "1D", 5, "svr")
    _active("TCS.NS", "1D", 5, "random_forest")
    _active("INFY.NS", "1H", 1, "random_forest")
    _active(
        "INFY.NS",
        "1H",
        1,
        "ensemble",
        members=[],
        candidates=[{"algorithm": "random_forest"}, {"algorithm": "svr"}],
    )
    _active("TCS.NS", "1D", 1, "svr")  # a catalogue instrument's default key: every algorithm, as before
    TrainedModel.objects.filter(symbol="TCS.NS", horizon=5, algorithm="svr").update(is_active=False)
    _active("TCS.NS", "15m", 2, "naive")  # naive needs no training

    assert _nightly() == {"enqueued": 3}
    assert sorted(enqueued) == [
        ("INFY.NS", "1H", 1, ["random_forest", "svr"]),
        ("TCS.NS", "1D", 1, None),
        ("TCS.NS", "1D", 5, ["random_forest"]),
    ]


def test_a_daily_horizon_3_model_is_retrained_overnight(frozen):
    Instrument.objects.update(active=False)
    candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
    models_train(symbol="TCS.NS", timeframe=Timeframe.D1, horizon=3, algorithms=["svr"])
    _nightly()
    svr = TrainedModel.objects.filter(symbol="TCS.NS", horizon=3, algorithm="svr")
    assert sorted(svr.values_list("version", flat=True)) == [1, 2]
    assert svr.get(is_active=True).version == 2  # the same configuration on the same rows: the newer fit
