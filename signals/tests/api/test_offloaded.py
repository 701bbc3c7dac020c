"""Through a web worker, signal generation and backtests (pandas, TA-Lib, the market data provider) run in a compute
worker (tradingdash.offload, issue 12's memory budget): the same answers, errors included, as in process."""

from datetime import UTC, datetime

import pytest
import time_machine

from market.tests.stale import LATER
from signals.models import TradingSignal
from tradingdash.tests.offloading import in_process

pytestmark = pytest.mark.django_db

GENERATE = "signals.services:signal_generate_id"
BACKTEST = "signals.services:signal_backtest"


def answer(response) -> tuple[int, dict]:
    return response.status_code, response.json()


def test_generation_runs_in_a_compute_worker_with_the_same_201(auth_client, history, compute_worker):
    offloaded = answer(auth_client.post("/api/signals/generate/TCS", {"timeframe": "1D"}, format="json"))
    assert compute_worker == [GENERATE]
    assert offloaded[0] == 201, offloaded[1]
    assert TradingSignal.objects.count() == 1
    with in_process():  # the same bar and inputs: the same signal, not a second one
        in_place = answer(auth_client.post("/api/signals/generate/TCS", {"timeframe": "1D"}, format="json"))
    assert compute_worker == [GENERATE]
    assert in_place == offloaded
    assert TradingSignal.objects.count() == 1


def test_not_enough_candles_crosses_as_the_same_422(auth_client, compute_worker):
    # Early in 2000 the (synthetic) provider itself has fewer daily bars than the indicators need.
    with time_machine.travel(datetime(2000, 6, 1, 12, tzinfo=UTC), tick=False):
        offloaded = answer(auth_client.post("/api/signals/generate/TCS", {}, format="json"))
        with in_process():
            in_place = answer(auth_client.post("/api/signals/generate/TCS", {}, format="json"))
    assert compute_worker == [GENERATE]
    assert offloaded[0] == 422
    assert offloaded[1]["error"]["code"] == "insufficient_history"
    assert offloaded[1]["error"]["details"]["needed"] == 210
    assert offloaded == in_place


def test_an_unknown_symbol_crosses_as_the_same_404(auth_client, frozen, compute_worker):
    offloaded = answer(auth_client.post("/api/signals/generate/NOSUCHCO", {}, format="json"))
    with in_process():
        in_place = answer(auth_client.post("/api/signals/generate/NOSUCHCO", {}, format="json"))
    assert compute_worker == [GENERATE]
    assert offloaded[0] == 404
    assert offloaded == in_place


def test_stale_market_data_crosses_as_the_same_503(auth_client, stored_then_provider_down, compute_worker):
    with time_machine.travel(LATER, tick=False):
        offloaded = auth_client.post("/api/signals/generate/TCS", {}, format="json")
        with in_process():
            in_place = auth_client.post("/api/signals/generate/TCS", {}, format="json")
    assert compute_worker == [GENERATE]
    assert offloaded.status_code == 503
    assert offloaded.json()["error"]["code"] == "market_data_stale"
    assert answer(offloaded) == answer(in_place)
    assert offloaded["Retry-After"] == in_place["Retry-After"]
    assert not TradingSignal.objects.exists()


def test_a_backtest_runs_in_a_compute_worker_with_the_same_200(auth_client, history, compute_worker):
    url = "/api/signals/TCS/backtest?timeframe=1D&start=2025-01-01&end=2026-03-01&commission_bps=10"
    offloaded = answer(auth_client.get(url))
    assert compute_worker == [BACKTEST]
    with in_process():
        in_place = answer(auth_client.get(url))
    assert offloaded[0] == 200, offloaded[1]
    assert offloaded[1]["trades"] and offloaded[1]["equity_curve"]
    assert offloaded == in_place


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("start=2026-01-03&end=2026-01-04", "empty_range"),  # a weekend
        ("start=2030-01-01", "empty_range"),
    ],
)
def test_backtest_errors_cross_as_the_same_422(auth_client, history, compute_worker, query, code):
    url = f"/api/signals/TCS/backtest?timeframe=1D&{query}"
    offloaded = answer(auth_client.get(url))
    with in_process():
        in_place = answer(auth_client.get(url))
    assert compute_worker == [BACKTEST]
    assert offloaded[0] == 422 and offloaded[1]["error"]["code"] == code
    assert offloaded == in_place


def test_a_backtest_without_enough_candles_crosses_as_the_same_422(auth_client, compute_worker):
    with time_machine.travel(datetime(2000, 6, 1, 12, tzinfo=UTC), tick=False):
        offloaded = answer(auth_client.get("/api/signals/TCS/backtest?timeframe=1D"))
        with in_process():
            in_place = answer(auth_client.get("/api/signals/TCS/backtest?timeframe=1D"))
    assert compute_worker == [BACKTEST]
    assert offloaded[0] == 422 and offloaded[1]["error"]["code"] == "insufficient_history"
    assert offloaded == in_place


def test_reading_stored_signals_is_not_offloaded(auth_client, history, compute_worker):
    assert auth_client.get("/api/signals/TCS").status_code == 200
    assert compute_worker == []
