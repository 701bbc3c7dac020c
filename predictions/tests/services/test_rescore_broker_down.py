"""Re-scoring after candles change is queued after commit; with the broker down it is done at once instead of
being lost (the event's handler used to log the error and drop it)."""

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
import time_machine
from kombu.exceptions import OperationalError

from market.services import candles_upsert
from market.tests.factories import make_candles_at
from market.timeframes import Timeframe
from predictions.models import Prediction
from predictions.tests.factories import PredictionFactory

pytestmark = pytest.mark.django_db
IST = ZoneInfo("Asia/Kolkata")
BASE = datetime.combine(datetime(2026, 6, 3).date(), time(), IST)
TARGET = datetime.combine(datetime(2026, 6, 4).date(), time(), IST)


def test_a_prediction_is_rescored_when_the_broker_cannot_take_the_task(
    monkeypatch, django_capture_on_commit_callbacks
):
    from predictions import tasks

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.rescore_predictions, "delay", broker_down)
    candles = make_candles_at([BASE, TARGET])
    with time_machine.travel(datetime(2026, 6, 5, 12, tzinfo=UTC), tick=False):
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=candles, source="frame")
        prediction = PredictionFactory(base_timestamp=BASE, target_time=TARGET)
        corrected = candles.copy()
        corrected.iloc[1, :4] *= 1.01  # the provider corrects the target bar
        with django_capture_on_commit_callbacks(execute=True):
            candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=corrected, source="frame")
    prediction = Prediction.objects.get(pk=prediction.pk)
    assert prediction.realized_price == pytest.approx(corrected["close"].iloc[1], abs=0.05)
