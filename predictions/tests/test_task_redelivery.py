"""A prediction task delivered again (acks_late: a worker lost after storing its prediction) stores nothing
new and announces nothing again: the same prediction answers."""

from datetime import UTC, datetime

import pytest
import time_machine

from market.services import candles_sync
from market.sources import get_provider
from market.timeframes import Timeframe
from predictions.models import Prediction
from predictions.tasks import generate_prediction
from tradingdash import events

pytestmark = pytest.mark.django_db
NOON = datetime(2026, 6, 4, 6, 30, tzinfo=UTC)


def test_a_prediction_task_delivered_twice_stores_and_announces_one_prediction(announcements):
    stored = announcements(events.PredictionStored)
    with time_machine.travel(NOON, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
        first, again = (
            generate_prediction.apply(
                args=("TCS.NS", "1D"), kwargs={"model": "naive"}, task_id="task-1"
            ).get()
            for _ in range(2)
        )
        other = generate_prediction.apply(
            args=("TCS.NS", "1D"), kwargs={"model": "naive"}, task_id="task-2"
        ).get()
    assert first == again
    assert other["prediction_id"] != first["prediction_id"]  # another request is another prediction
    assert Prediction.objects.count() == 2
    assert [event.prediction_id for event in stored] == [first["prediction_id"], other["prediction_id"]]
