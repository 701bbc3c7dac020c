"""With the provider down the stored candles end days ago: a signal from their last bar is refused (503
market_data_stale; signals/tests/api/test_stale_market_data.py), before the system prediction is asked for. So
no prediction is made from stale candles for it, and a prediction made when that bar was the latest, whose
target bar has closed since, is never the factor of a "new" signal."""

from datetime import UTC, datetime

import pytest
import time_machine

from market.services import candles_sync
from market.sources import get_provider
from market.tests.factories import InstrumentFactory, down_provider
from market.timeframes import Timeframe
from predictions.models import Prediction, TrainedModel
from predictions.services import models_train
from predictions.tests.factories import record_default_choice
from signals.models import TradingSignal
from signals.tasks import generate_for_watchlist

pytestmark = pytest.mark.django_db
# Wednesday 2026-06-03 17:00 IST, after the close; then Monday 2026-06-08 17:00 IST, three sessions later.
STORED = datetime(2026, 6, 3, 11, 30, tzinfo=UTC)
LATER = datetime(2026, 6, 8, 11, 30, tzinfo=UTC)


@pytest.fixture
def svr_beating_naive():
    with time_machine.travel(STORED, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
        model = models_train(symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["svr"])[0]
    TrainedModel.objects.exclude(pk=model.pk).update(is_active=False)  # keep only the svr (no ensemble)
    TrainedModel.objects.filter(pk=model.pk).update(
        metrics={**model.metrics, "mae_vs_naive": 0.8, "dm_p_value": 0.01}
    )
    record_default_choice(beats=True)
    return model


@pytest.fixture
def provider_down(monkeypatch):
    monkeypatch.setattr("market.services.get_provider", lambda name=None: down_provider())


def test_a_signal_on_stale_candles_is_refused_before_a_prediction_is_made_for_it(
    auth_client, svr_beating_naive, provider_down
):
    with time_machine.travel(LATER, tick=False):
        response = auth_client.post("/api/signals/generate/TCS", {}, format="json")
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "market_data_stale"
    assert not Prediction.objects.exists() and not TradingSignal.objects.exists()


def test_a_prediction_made_when_the_bar_was_fresh_is_no_factor_of_a_signal_once_its_target_has_closed(
    auth_client, svr_beating_naive, provider_down
):
    with time_machine.travel(STORED, tick=False):
        fresh = auth_client.post("/api/signals/generate/TCS", {}, format="json").json()
    assert fresh["prediction_id"] is not None  # the bar was the latest: a forecast, and a factor
    with time_machine.travel(LATER, tick=False):
        stale = auth_client.post("/api/signals/generate/TCS", {}, format="json")
    assert stale.status_code == 503
    assert list(TradingSignal.objects.values_list("id", flat=True)) == [fresh["id"]]


def test_the_scheduled_run_skips_stale_candles_and_makes_no_prediction(svr_beating_naive, provider_down):
    InstrumentFactory(symbol="TCS.NS")
    with time_machine.travel(LATER, tick=False):
        result = generate_for_watchlist.apply(kwargs={"timeframe": "1D"}).get()
    assert result["generated"] == []
    assert "Market data is stale" in result["skipped"]["TCS.NS"]
    assert not TradingSignal.objects.exists() and not Prediction.objects.exists()
