from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from market.services import candles_sync
from market.sources import get_provider
from market.timeframes import Timeframe
from signals.models import TradingSignal
from signals.tests.api.conftest import NOW

pytestmark = pytest.mark.django_db


# Wednesday 2026-06-03, 12:00 IST: the session is open, so today's daily bar is still forming.
def test_generate_returns_201_with_levels_and_reasons(auth_client, history):
    response = auth_client.post("/api/signals/generate/TCS", {"timeframe": "1D"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["signal_type"] in {"BUY", "SELL", "HOLD"}
    assert 0 <= body["strength"] <= 1
    assert {f["name"] for f in body["factors"]} >= {"rsi", "macd", "bollinger", "trend", "volume"}
    assert "RSI" in body["reasoning"]
    if body["signal_type"] == "BUY":
        assert body["stop_loss"] < body["entry_price"] < body["price_target"]
    if body["signal_type"] == "SELL":
        assert body["price_target"] < body["entry_price"] < body["stop_loss"]


def test_signal_uses_only_closed_candles(auth_client, history):
    body = auth_client.post("/api/signals/generate/TCS", {}, format="json").json()
    # 12:00 IST on 3 June: the 3 June bar is forming, so the last closed bar is 2 June's (opens 1 June 18:30 UTC).
    assert body["candle_timestamp"] == "2026-06-02T00:00:00+05:30"


def test_not_enough_candles_is_422_with_needed(auth_client):
    # Early in 2000 the (synthetic) provider itself has fewer daily bars than the indicators need.
    with time_machine.travel(datetime(2000, 6, 1, 12, tzinfo=UTC), tick=False):
        response = auth_client.post("/api/signals/generate/TCS", {}, format="json")
    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert details["needed"] == 210 and 0 < details["available"] < 210


def test_generate_fetches_missing_history_first(auth_client, frozen):
    # Only a recent range was ever fetched (coverage exists, with too few candles): generation backfills.
    candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=30, provider=get_provider("synthetic"))
    response = auth_client.post("/api/signals/generate/TCS", {}, format="json")
    assert response.status_code == 201, response.json()


def test_unknown_symbol_is_404(auth_client, frozen):
    assert auth_client.post("/api/signals/generate/NOSUCHCO", {}, format="json").status_code == 404


def test_list_newest_first_and_invalidated_by_new_signal(auth_client, history):
    assert auth_client.get("/api/signals/TCS").json()["results"] == []
    auth_client.post("/api/signals/generate/TCS", {}, format="json")
    assert len(auth_client.get("/api/signals/TCS?timeframe=1D&limit=5").json()["results"]) == 1
    with time_machine.travel(NOW + timedelta(days=1), tick=False):  # a day later: one more closed bar
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=5, provider=get_provider("synthetic"))
        auth_client.post("/api/signals/generate/TCS", {}, format="json")
        results = auth_client.get("/api/signals/TCS?timeframe=1D&limit=5").json()["results"]
    assert len(results) == 2
    assert results[0]["id"] > results[1]["id"]


def test_backtest_shape(auth_client, history):
    response = auth_client.get("/api/signals/TCS/backtest?timeframe=1D&start=2025-01-01&commission_bps=10")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert {
        "trades",
        "win_rate",
        "total_return",
        "buy_and_hold_return",
        "max_drawdown",
        "sharpe",
        "exposure",
        "equity_curve",
        "warnings",
    } <= set(body)
    assert not any(w.startswith("No costs") for w in body["warnings"])  # 10 bps were charged
    assert len(body["equity_curve"]) <= 500
    assert body["trades"] and all(
        t["entry_time"] >= "2024-12-31T18:30:00+00:00" for t in body["trades"]
    )  # 1 Jan IST


@pytest.mark.parametrize("query", ["commission_bps=-1", "start=2026-01-01&end=2025-01-01", "timeframe=3D"])
def test_backtest_bad_query_is_400(auth_client, query):
    assert auth_client.get(f"/api/signals/TCS/backtest?{query}").status_code == 400


def test_generation_task_covers_the_watchlist(frozen):
    from market.models import Instrument
    from signals.tasks import generate_for_watchlist

    Instrument.objects.exclude(symbol="TCS.NS").update(active=False)
    candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
    result = generate_for_watchlist("1D")
    assert [g["symbol"] for g in result["generated"]] == ["TCS.NS"]
    assert TradingSignal.objects.count() == 1


def test_list_is_served_from_cache_until_a_sync_changes_the_data(auth_client, history):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    auth_client.post("/api/signals/generate/TCS", {}, format="json")
    auth_client.get("/api/signals/TCS")
    with CaptureQueriesContext(connection) as queries:
        auth_client.get("/api/signals/TCS")
    assert not any("signals_tradingsignal" in q["sql"] for q in queries)
    TradingSignal.objects.all().delete()
    assert len(auth_client.get("/api/signals/TCS").json()["results"]) == 1  # still cached
    # A sync that gets back the bars as stored changes nothing: the cached list stands.
    candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=5, provider=get_provider("synthetic"))
    assert len(auth_client.get("/api/signals/TCS").json()["results"]) == 1
    with time_machine.travel(NOW + timedelta(days=1), tick=False):  # Thursday: a new daily bar
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=5, provider=get_provider("synthetic"))
        assert auth_client.get("/api/signals/TCS").json()["results"] == []


def test_backtest_end_date_is_inclusive_of_that_day_only(auth_client, history):
    body = auth_client.get("/api/signals/TCS/backtest?start=2025-01-01&end=2025-12-31").json()
    # 31 Dec 2025 IST opens at 30 Dec 18:30 UTC; 1 Jan 2026's bar (31 Dec 18:30 UTC) must not be in the replay.
    assert body["end"] == "2025-12-31T00:00:00+05:30"
    assert all(t["exit_time"] <= "2025-12-31T00:00:00+05:30" for t in body["trades"])


def test_a_signal_on_synthetic_candles_says_so_wherever_it_is_shown(auth_client, history):
    """Candles and predictions carry `source` ("synthetic" for generated demo data); a BUY/SELL/HOLD made on
    synthetic candles was served, listed and streamed with nothing saying it was not made on market prices."""
    from stream.messages import signal_message

    made = auth_client.post("/api/signals/generate/TCS", {}, format="json").json()
    listed = auth_client.get("/api/signals/TCS").json()["results"]
    assert made["source"] == "synthetic"
    assert [row["source"] for row in listed] == ["synthetic"]
    assert signal_message(signal_id=made["id"])["signal"]["source"] == "synthetic"
