"""backfill_predictions: a track record replayed as of each bar, with no look-ahead, scored, idempotent."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from market.models import MarketData
from market.services import candles_sync
from market.sources import get_provider
from market.timeframes import Timeframe
from predictions.models import Prediction
from predictions.services import predictions_backfill

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(frozen):
    candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))


def test_backfill_replays_scored_predictions_fitted_only_on_earlier_bars(history, auth_client):
    result = predictions_backfill(symbol="TCS.NS", timeframe=Timeframe.D1, bars=20)
    replayed = list(Prediction.objects.filter(replayed=True).order_by("base_timestamp"))
    assert result.created == 20 and result.scored == 20 and len(replayed) == 20
    # The model was fitted on bars up to the first replayed base bar, never later ones.
    assert result.trained_until == replayed[0].base_timestamp
    closes = dict(
        MarketData.objects.filter(symbol="TCS.NS", timeframe="1D").values_list("timestamp", "close_price")
    )
    for prediction in replayed:
        assert prediction.requested_by is None and prediction.target_time > prediction.base_timestamp
        assert prediction.base_price == pytest.approx(closes[prediction.base_timestamp])
        assert prediction.realized_price == pytest.approx(closes[prediction.target_time])
        assert prediction.lower_bound <= prediction.predicted_price <= prediction.upper_bound
    accuracy = auth_client.get("/api/predictions/TCS/accuracy").json()
    assert (
        accuracy["scored"] == 20 and accuracy["mae"] is not None and accuracy["interval_coverage"] is not None
    )
    again = predictions_backfill(symbol="TCS.NS", timeframe=Timeframe.D1, bars=20)
    assert again.created == 0 and Prediction.objects.count() == 20


def test_command_and_its_errors(history):
    out = StringIO()
    call_command("backfill_predictions", "TCS", "--bars", "5", stdout=out, verbosity=0)
    assert "5 replayed predictions (5 scored)" in out.getvalue()
    with pytest.raises(CommandError, match="needs at least"):
        call_command("backfill_predictions", "TCS", "--bars", "2000", stdout=StringIO(), verbosity=0)
    with pytest.raises(CommandError, match="random_forest, svr or naive"):
        call_command("backfill_predictions", "TCS", "--model", "lstm", stdout=StringIO(), verbosity=0)
