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

    def send(
        args=None, kwargs=None, **options
    ):  # the broker: what was queued, as (symbol, tf, h, algorithms)
        if kwargs is not None:
            args = [kwargs[name] for name in ("symbol", "timeframe", "horizon", "algorithms")]
        sent.append(tuple(args))

    monkeypatch.setattr(tasks.train_models, "apply_async", send)
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

    assert _nightly() == {"enqueued": 3, "already_enqueued": 0}
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


def test_the_nightly_retraining_delivered_again_queues_no_training_twice(enqueued, frozen):
    """acks_late: a worker lost during the fan-out (or after it, before the ack) gets the task again; every
    training it had queued was queued a second time, and trained twice that night."""
    Instrument.objects.update(active=False)
    Instrument.objects.filter(symbol="TCS.NS").update(active=True)
    _active("INFY.NS", "1D", 1, "svr")
    first, again = _nightly(), _nightly()
    assert sorted(enqueued) == [("INFY.NS", "1D", 1, ["svr"]), ("TCS.NS", "1D", 1, None)]
    assert (first, again) == ({"enqueued": 2, "already_enqueued": 0}, {"enqueued": 0, "already_enqueued": 2})


def test_a_user_asking_while_the_nightly_training_is_queued_waits_for_it(enqueued, auth_client, frozen):
    Instrument.objects.update(active=False)
    Instrument.objects.filter(symbol="TCS.NS").update(active=True)
    candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
    _nightly()
    response = auth_client.post("/api/predictions/generate/TCS", {}, format="json")
    assert response.status_code == 202
    assert response.json()["status"] == "waiting_for_training"  # its prediction starts when that one ends
    assert enqueued == [("TCS.NS", "1D", 1, None)]  # not a second training of every model beside it
