"""The scheduled run skips a symbol whose latest closed bar is not stored (the provider down at 16:30). The
market sync retries and the candles arrive an hour later; the skipped bar used to get no signal at all: the next
scheduled run, a day later, signs a newer bar. Now the candles' arrival makes the skipped signal."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from structlog.testing import capture_logs

from market.services import candles_sync, candles_upsert
from market.sources import get_provider
from market.tests.factories import InstrumentFactory, provider_configured
from market.tests.stale import LATER
from market.timeframes import Timeframe
from signals.models import TradingSignal
from signals.tasks import generate_for_watchlist
from tradingdash import events

pytestmark = pytest.mark.django_db


@pytest.fixture
def announced(announcements):
    return announcements(events.SignalCreated)


@pytest.fixture
def synthetic():
    return get_provider("synthetic")


def test_a_symbol_skipped_for_stale_candles_gets_its_signal_when_they_arrive(
    stored_then_provider_down, synthetic, monkeypatch, django_capture_on_commit_callbacks, announced
):
    InstrumentFactory(symbol="TCS.NS")
    with time_machine.travel(LATER, tick=False):
        result = generate_for_watchlist.apply(kwargs={"timeframe": "1D"}).get()
        assert "Market data is stale" in result["skipped"]["TCS.NS"]
        assert not TradingSignal.objects.exists()
        provider_configured(monkeypatch, synthetic)  # the provider is back: the market sync's retry lands
        with django_capture_on_commit_callbacks(execute=True):
            candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1)
        with django_capture_on_commit_callbacks(execute=True):  # more candles later: no second signal
            candles_sync(symbol="TCS.NS", timeframe=Timeframe.W1, days=400)
            candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=30)
    signal = TradingSignal.objects.get(symbol="TCS.NS")
    assert signal.candle_timestamp.isoformat() == "2026-06-07T18:30:00+00:00"  # Monday's bar, in UTC
    assert [event.signal_id for event in announced] == [signal.pk]


def test_a_catch_up_on_candles_still_behind_waits_for_the_next_ones(
    stored_then_provider_down, synthetic, monkeypatch, django_capture_on_commit_callbacks
):
    """Candles that arrive but stop short of the latest closed bar make no signal on an old bar; the catch-up
    stays pending and the next arrival makes it."""
    InstrumentFactory(symbol="TCS.NS")
    with time_machine.travel(LATER, tick=False):
        generate_for_watchlist.apply(kwargs={"timeframe": "1D"})
        thursday = synthetic.fetch_candles("TCS.NS", Timeframe.D1, start=LATER - timedelta(days=6))
        thursday = thursday[thursday.index < datetime(2026, 6, 4, 12, tzinfo=UTC)]
        with capture_logs() as logs, django_capture_on_commit_callbacks(execute=True):
            candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=thursday, source="synthetic")
        assert not TradingSignal.objects.exists()
        assert "signal_catch_up_waiting" in [entry["event"] for entry in logs]
        provider_configured(monkeypatch, synthetic)
        with django_capture_on_commit_callbacks(execute=True):
            candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1)
    assert [s.candle_timestamp.isoformat() for s in TradingSignal.objects.all()] == [
        "2026-06-07T18:30:00+00:00"
    ]


def test_candles_of_a_symbol_the_scheduled_run_did_not_skip_make_no_signal(
    synthetic, django_capture_on_commit_callbacks
):
    InstrumentFactory(symbol="TCS.NS")
    with time_machine.travel(LATER, tick=False), django_capture_on_commit_callbacks(execute=True):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=synthetic)
    assert not TradingSignal.objects.exists()
