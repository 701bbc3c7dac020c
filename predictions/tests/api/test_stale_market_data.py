"""A forecast is made from the latest closed bar or not at all. With the market data provider down, the stored
candles end days ago: a prediction from their last bar would target a bar that has already closed (a
`target_time` in the past), served as a forecast and scored in /accuracy as one. It is refused with a 503
that says how old the data is; nothing is stored."""

from datetime import UTC, datetime

import pytest
import time_machine

from market.services import candles_sync
from market.sources import get_provider
from market.tests.stale import LATER, STORED
from market.timeframes import Timeframe
from predictions.models import Prediction
from predictions.services import predictions_score

pytestmark = pytest.mark.django_db


def test_a_prediction_from_stale_candles_is_a_503_that_says_how_old_they_are(
    auth_client, stored_then_provider_down
):
    with time_machine.travel(LATER, tick=False):
        response = auth_client.post("/api/predictions/generate/TCS", {"model": "naive"}, format="json")
    assert response.status_code == 503, response.json()
    error = response.json()["error"]
    assert error["code"] == "market_data_stale"
    assert "2026-06-03" in error["message"]  # the last bar stored (its session, in exchange time)
    assert "Cannot forecast" in error["message"]
    assert "Yahoo Finance did not answer" in error["message"]  # why it is stale
    assert response["Retry-After"]
    assert not Prediction.objects.exists()


def test_no_prediction_from_stale_candles_is_scored_as_a_forecast(auth_client, stored_then_provider_down):
    with time_machine.travel(LATER, tick=False):
        auth_client.post("/api/predictions/generate/TCS", {"model": "naive"}, format="json")
        stored_then_provider_down.fail = None
    with time_machine.travel(LATER, tick=False):  # the provider is back: the missed sessions are stored
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, provider=get_provider("synthetic"))
        predictions_score()
        accuracy = auth_client.get("/api/predictions/TCS/accuracy").json()
    assert accuracy["scored"] == 0 and accuracy["total"] == 0


def test_a_prediction_stored_after_its_target_closed_is_not_scored_as_a_forecast(auth_client):
    """Rows made from stale candles before they were refused: their target had closed when they were made."""
    from predictions.tests.factories import PredictionFactory

    wednesday, thursday = datetime(2026, 6, 2, 18, 30, tzinfo=UTC), datetime(2026, 6, 3, 18, 30, tzinfo=UTC)
    thursday_close = datetime(2026, 6, 4, 10, 0, tzinfo=UTC)
    scored = {"realized_price": 101.0, "realized_at": thursday_close, "error": 2.0}
    with time_machine.travel(STORED, tick=False):  # Wednesday evening: a forecast of Thursday's close
        PredictionFactory(base_timestamp=wednesday, target_time=thursday, predicted_price=103.0, **scored)
    with time_machine.travel(LATER, tick=False):  # Monday, from Wednesday's bar: Thursday had closed
        PredictionFactory(base_timestamp=wednesday, target_time=thursday, predicted_price=90.0, **scored)
        PredictionFactory(  # a replay, made afterwards by design (backfill_predictions)
            base_timestamp=wednesday, target_time=thursday, predicted_price=103.0, replayed=True, **scored
        )
        body = auth_client.get("/api/predictions/TCS/accuracy").json()
    assert body["total"] == 3 and body["scored"] == 2
    assert body["hit_rate"] == 1.0 and body["mae"] == pytest.approx(2.0)


def test_a_bar_that_closed_minutes_after_the_last_fetch_is_fetched_not_refused(auth_client):
    """Reads refresh the tail at most every 5 minutes: a bar closed since the last fetch is fetched for a forecast."""
    before_close, after_close = (
        datetime(2026, 6, 3, 9, 58, tzinfo=UTC),
        datetime(2026, 6, 3, 10, 1, tzinfo=UTC),
    )
    with time_machine.travel(before_close, tick=False):  # 15:28 IST: Wednesday's bar is stored partial
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
    with time_machine.travel(after_close, tick=False):  # 15:31 IST: it has closed
        response = auth_client.post("/api/predictions/generate/TCS", {"model": "naive"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["base_timestamp"] == "2026-06-03T00:00:00+05:30"
