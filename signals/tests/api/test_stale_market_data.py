"""A signal is a decision on the latest closed bar or not made at all. With the market data provider down, the
stored candles end days ago: a BUY/SELL/HOLD from their last bar, stored and announced as new, is acted on by
alerts and the live stream as if it were current. It is refused like a forecast (503 `market_data_stale`); the
scheduled run skips the symbol and says why; reading stored signals and backtests still works."""

from datetime import UTC, datetime

import pytest
import time_machine
from structlog.testing import capture_logs

from market.services import candles_sync
from market.sources import get_provider
from market.tests.factories import InstrumentFactory
from market.tests.stale import LATER, STORED
from market.timeframes import Timeframe
from signals.models import TradingSignal
from signals.tasks import generate_for_watchlist
from tradingdash import events

pytestmark = pytest.mark.django_db

WEDNESDAY_BAR = "2026-06-03T00:00:00+05:30"


@pytest.fixture
def announced(announcements):
    return announcements(events.SignalCreated)


def test_a_signal_from_stale_candles_is_a_503_and_nothing_is_stored_or_announced(
    auth_client, stored_then_provider_down, announced
):
    with time_machine.travel(LATER, tick=False):
        response = auth_client.post("/api/signals/generate/TCS", {}, format="json")
    assert response.status_code == 503, response.json()
    error = response.json()["error"]
    assert error["code"] == "market_data_stale"
    assert "2026-06-03" in error["message"]  # the last bar stored (its session, in exchange time)
    assert "Yahoo Finance did not answer" in error["message"]  # why it is stale
    assert "No signal" in error["message"]
    assert response["Retry-After"]
    assert not TradingSignal.objects.exists()
    assert announced == []


def test_the_signal_of_the_last_fresh_bar_is_not_made_again_once_later_bars_closed(
    auth_client, stored_then_provider_down, announced
):
    with time_machine.travel(STORED, tick=False):
        fresh = auth_client.post("/api/signals/generate/TCS", {}, format="json")
    assert fresh.status_code == 201 and fresh.json()["candle_timestamp"] == WEDNESDAY_BAR
    with time_machine.travel(LATER, tick=False):
        stale = auth_client.post("/api/signals/generate/TCS", {}, format="json")
        listed = auth_client.get("/api/signals/TCS")  # stored signals are still served
    assert stale.status_code == 503 and stale.json()["error"]["code"] == "market_data_stale"
    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()["results"]] == [fresh.json()["id"]]
    assert len(announced) == 1


def test_the_scheduled_run_skips_a_symbol_with_stale_candles_says_why_and_goes_on(stored_then_provider_down):
    InstrumentFactory(symbol="TCS.NS")
    InstrumentFactory(symbol="INFY.NS")
    with time_machine.travel(LATER, tick=False):  # INFY.NS was fetched just now: its candles are current
        candles_sync(symbol="INFY.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
        with capture_logs() as logs:
            result = generate_for_watchlist.apply(kwargs={"timeframe": "1D"}).get()
    # (The catalogue's other active instruments have nothing stored: skipped, the provider being down.)
    assert [row["symbol"] for row in result["generated"]] == ["INFY.NS"]
    assert "Market data is stale" in result["skipped"]["TCS.NS"]
    assert list(TradingSignal.objects.values_list("symbol", flat=True)) == ["INFY.NS"]
    logged = {entry["symbol"]: entry["reason"] for entry in logs if entry["event"] == "signal_skipped"}
    assert logged.keys() == result["skipped"].keys()
    assert logged["TCS.NS"] == result["skipped"]["TCS.NS"]


def test_the_scheduled_run_does_not_report_the_old_bars_signal_as_generated(stored_then_provider_down):
    """Wednesday's run made Wednesday's signal; Monday's run, with the provider down, made nothing new."""
    InstrumentFactory(symbol="TCS.NS")
    with time_machine.travel(STORED, tick=False):
        generate_for_watchlist.apply(kwargs={"timeframe": "1D"}).get()
    with time_machine.travel(LATER, tick=False):
        result = generate_for_watchlist.apply(kwargs={"timeframe": "1D"}).get()
    assert result["generated"] == [] and "Market data is stale" in result["skipped"]["TCS.NS"]
    assert TradingSignal.objects.count() == 1


def test_a_bar_that_closed_minutes_after_the_last_fetch_is_fetched_for_the_signal(auth_client, announced):
    """Reads refresh the tail at most every 5 minutes: in the minutes after a close, the day's bar was stored
    partial (left out), and the signal was made, and announced as new, on the day before's bar."""
    before_close, after_close = (
        datetime(2026, 6, 3, 9, 58, tzinfo=UTC),
        datetime(2026, 6, 3, 10, 1, tzinfo=UTC),
    )
    with time_machine.travel(before_close, tick=False):  # 15:28 IST: Wednesday's bar is stored partial
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
    with time_machine.travel(after_close, tick=False):  # 15:31 IST: it has closed
        response = auth_client.post("/api/signals/generate/TCS", {}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["candle_timestamp"] == WEDNESDAY_BAR
    assert len(announced) == 1


def test_a_backtest_on_stale_candles_is_served_and_says_stale(auth_client, stored_then_provider_down):
    with time_machine.travel(LATER, tick=False):
        response = auth_client.get("/api/signals/TCS/backtest")
    assert response.status_code == 200, response.json()
    assert response.json()["stale"] is True


def test_a_backtest_on_current_candles_is_not_stale(auth_client):
    with time_machine.travel(STORED, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
        response = auth_client.get("/api/signals/TCS/backtest")
    assert response.status_code == 200, response.json()
    assert response.json()["stale"] is False
