"""backfill_predictions: a track record replayed as of each bar, with no look-ahead, scored, idempotent."""

from datetime import UTC, date, datetime, time, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import time_machine
from django.contrib.auth.models import AnonymousUser
from django.core.management import CommandError, call_command

from market.adjust import Action
from market.calendar import ExchangeCalendar, bundled_nse_holidays
from market.models import MarketData
from market.services import candles_sync
from market.sources import get_provider
from market.tests.factories import FrameProvider, make_candles
from market.timeframes import Timeframe
from predictions.models import Prediction
from predictions.selectors import predictions_accuracy
from predictions.services import predictions_backfill, predictions_rescore

pytestmark = pytest.mark.django_db

IST = ZoneInfo("Asia/Kolkata")


@pytest.fixture
def history(frozen):
    candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))


def test_backfill_replays_scored_predictions_fitted_only_on_earlier_bars(history, auth_client):
    result = predictions_backfill(symbol="TCS.NS", timeframe=Timeframe.D1, bars=20)
    replayed = list(Prediction.objects.filter(replayed=True).order_by("base_timestamp"))
    assert result.created == 20 and result.scored == 20 and len(replayed) == 20
    assert {p.source for p in replayed} == {"synthetic"}  # made from generated candles, and saying so
    # The model was fitted on bars up to the first replayed base bar, never later ones.
    assert result.trained_until == replayed[0].base_timestamp
    closes = dict(
        MarketData.objects.filter(symbol="TCS.NS", timeframe="1D").values_list("timestamp", "close_price")
    )
    for prediction in replayed:  # no split here: as-traded and adjusted prices are the same
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


def test_replayed_version_names_the_exchange_day_of_the_last_bar_fitted_on(history):
    # Daily bars open at IST midnight, 18:30 UTC the day before: the version must name the trading day.
    result = predictions_backfill(symbol="TCS.NS", timeframe=Timeframe.D1, bars=5)
    day = result.trained_until.astimezone(IST).date()
    assert result.model_version == f"svr replay (fitted on bars to {day})"
    assert set(Prediction.objects.values_list("model_version", flat=True)) == {result.model_version}


def test_replayed_predictions_are_realized_at_the_target_sessions_close(history):
    predictions_backfill(symbol="TCS.NS", timeframe=Timeframe.D1, bars=5)
    for p in Prediction.objects.filter(replayed=True):
        assert p.realized_at == datetime.combine(p.target_time.astimezone(IST).date(), time(15, 30), IST)


def test_command_and_its_errors(history):
    out = StringIO()
    call_command("backfill_predictions", "TCS", "--bars", "5", stdout=out, verbosity=0)
    assert "5 replayed predictions (5 scored)" in out.getvalue()
    with pytest.raises(CommandError, match="needs at least"):
        call_command("backfill_predictions", "TCS", "--bars", "2000", stdout=StringIO(), verbosity=0)
    with pytest.raises(CommandError, match="random_forest, svr or naive"):
        call_command("backfill_predictions", "TCS", "--model", "lstm", stdout=StringIO(), verbosity=0)


def test_command_names_an_unknown_symbol_instead_of_a_traceback(history):
    with pytest.raises(CommandError, match=r"NOSUCHCO\.NS: No market data"):
        call_command("backfill_predictions", "NOSUCHCO", "--bars", "5", stdout=StringIO(), verbosity=0)


def test_backfill_across_a_split_stores_as_traded_prices_that_a_resync_leaves_alone(monkeypatch):
    # 400 daily bars traded at twice today's prices until a 1:2 split at bar 340; the last 100 are replayed.
    days = ExchangeCalendar(bundled_nse_holidays()).trading_days(date(2024, 6, 3), date(2026, 6, 1))[:400]
    traded = make_candles(400, base=1000.0, seed=7)
    traded.index = (
        pd.DatetimeIndex([datetime.combine(day, time(), IST) for day in days], name="timestamp")
        .tz_convert(UTC)
        .as_unit("us")
    )
    start = traded.index[0].to_pydatetime()
    traded.iloc[:340, :4] *= 2
    split_bar = traded.index[340].to_pydatetime()
    provider = FrameProvider(
        {("SPLIT.NS", Timeframe.D1): traded},
        actions={"SPLIT.NS": [Action(ex_date=split_bar.astimezone(IST).date(), kind="split", ratio=2.0)]},
    )
    monkeypatch.setattr("market.services.get_provider", lambda name=None: provider)
    with time_machine.travel(traded.index[-1].to_pydatetime() + timedelta(days=1, hours=6), tick=False):
        candles_sync(symbol="SPLIT.NS", timeframe=Timeframe.D1, days=600, provider=provider)
        predictions_backfill(symbol="SPLIT.NS", timeframe=Timeframe.D1, bars=100, algorithm="naive")
        closes = dict(MarketData.objects.filter(symbol="SPLIT.NS").values_list("timestamp", "close_price"))
        replayed = list(Prediction.objects.filter(replayed=True).order_by("base_timestamp"))
        assert sum(p.base_timestamp < split_bar for p in replayed) > 40
        for p in replayed:
            # Naive: the base bar's close, as traded that day; the target's close in the same units.
            assert p.base_price == pytest.approx(closes[p.base_timestamp])
            assert p.predicted_price == pytest.approx(p.base_price)
            ratio = 2.0 if p.base_timestamp < split_bar <= p.target_time else 1.0
            assert p.realized_price == pytest.approx(closes[p.target_time] * ratio)
            assert abs(p.error) < 0.1 * p.base_price
        before = predictions_accuracy(symbol="SPLIT.NS", timeframe=Timeframe.D1, user=AnonymousUser())
        # The same history fetched again announces CandlesStored over the range; the receiver enqueues this.
        candles_sync(symbol="SPLIT.NS", timeframe=Timeframe.D1, days=600, provider=provider)
        changed = predictions_rescore(
            symbol="SPLIT.NS", timeframe="1D", first=start, last=traded.index[-1].to_pydatetime()
        )
        assert changed == 0
        assert predictions_accuracy(symbol="SPLIT.NS", timeframe=Timeframe.D1, user=AnonymousUser()) == before
