"""In a web worker, the market reads that must ask the provider or compute (pandas, TA-Lib, exchange_calendars)
run in a compute worker (tradingdash/offload.py) and answer exactly as in place; reads of what is stored and
cached stay in the web worker."""

import time
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.conf import settings
from django.core.cache import cache

from market import sources
from market.calendar import LIBRARY_EXCHANGES, library_calendar
from market.models import MarketData
from market.providers import PROVIDER_NAMES
from market.sources import _build, provider_name, provider_timeframes
from tradingdash import heartbeats
from tradingdash.cache import local_caches_clear
from tradingdash.celery import app
from tradingdash.tests.offloading import in_process

pytestmark = pytest.mark.django_db
OPEN_NOW = datetime(2026, 6, 1, 6, 30, tzinfo=UTC)  # Monday, 12:00 IST


@pytest.fixture
def frozen():
    with time_machine.travel(OPEN_NOW, tick=False):
        yield


def in_place(client, method: str, path: str, **kwargs):
    """The same request served with nothing offloaded."""
    with in_process():
        return getattr(client, method)(path, **kwargs)


def fresh():
    """Empty caches, the compute worker still alive (its heartbeat is in the cache)."""
    heartbeat = heartbeats.WORKER_KEY.format(queue=settings.COMPUTE_QUEUE)
    beat = cache.get(heartbeat)
    cache.clear()
    local_caches_clear()
    cache.set(heartbeat, beat, 120)


def test_a_quote_miss_asks_the_provider_in_a_compute_worker(auth_client, compute_worker, frozen):
    offloaded = auth_client.get("/api/market/quote/TCS")
    assert offloaded.status_code == 200
    assert compute_worker == ["market.services:quote_fetch"]
    assert auth_client.get("/api/market/quote/TCS").json()["cached"] is True  # a hit: nothing more offloaded
    assert compute_worker == ["market.services:quote_fetch"]
    fresh()
    assert in_place(auth_client, "get", "/api/market/quote/TCS").json() == offloaded.json()


def test_a_quote_whose_compute_worker_does_not_answer_is_served_stale_from_the_store(
    auth_client, compute_worker, frozen, monkeypatch, settings
):
    auth_client.get("/api/market/historical/TCS?timeframe=1D&limit=5")  # daily candles stored
    fresh()
    settings.COMPUTE_TIMEOUT = 1
    monkeypatch.setattr(app, "send_task", lambda name, **kwargs: None)  # taken, never answered
    body = auth_client.get("/api/market/quote/TCS").json()
    assert body["stale"] is True and body["cached"] is False


def test_an_unknown_symbol_is_a_404_across_the_wire(auth_client, compute_worker, frozen):
    response = auth_client.get("/api/market/quote/NOSUCHCO")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "symbol_not_found"
    assert compute_worker == ["market.services:quote_fetch"]


def test_a_never_fetched_range_is_fetched_in_a_compute_worker_once(auth_client, compute_worker, frozen):
    path = "/api/market/historical/TCS?timeframe=1D&limit=60"
    offloaded = auth_client.get(path)
    assert offloaded.status_code == 200
    assert compute_worker == ["market.services:candles_ensure_fetched"]
    assert MarketData.objects.filter(symbol="TCS.NS", timeframe="1D").count() >= 60
    fresh()
    again = auth_client.get(path)  # a miss of the body cache, but the range is stored: read here
    assert compute_worker == ["market.services:candles_ensure_fetched"]
    assert again.content == offloaded.content
    MarketData.objects.all().delete()
    from market.models import CoverageInterval

    CoverageInterval.objects.all().delete()
    fresh()
    assert in_place(auth_client, "get", path).content == offloaded.content


def test_indicators_are_computed_in_a_compute_worker(auth_client, compute_worker, frozen):
    auth_client.get("/api/market/historical/TCS?timeframe=1D&limit=200")  # stored (the first read fetches)
    path = "/api/market/indicators/TCS?timeframe=1D&limit=30&names=sma:5,rsi:14,macd"
    offloaded = auth_client.get(path)
    assert offloaded.status_code == 200
    assert compute_worker == [
        "market.services:candles_ensure_fetched",
        "market.selectors:indicators_computed",
    ]
    calls = len(compute_worker)
    assert auth_client.get(path).json() == offloaded.json()  # cached: nothing more offloaded
    assert len(compute_worker) == calls
    fresh()
    assert in_place(auth_client, "get", path).json() == offloaded.json()


def test_quotes_of_a_watchlist_are_fetched_together_in_a_compute_worker(auth_client, compute_worker, frozen):
    body = auth_client.get("/api/market/multiple?symbols=TCS,INFY,RELIANCE").json()
    assert {quote["symbol"] for quote in body["quotes"]} == {"TCS.NS", "INFY.NS", "RELIANCE.NS"}
    assert body["errors"] == {}
    assert compute_worker == ["market.services:quotes_refresh"]  # one batch; then every quote is a hit


def test_a_staff_sync_runs_in_a_compute_worker(staff_client, compute_worker, frozen):
    response = staff_client.post("/api/market/sync/INFY", {"timeframe": "1D", "days": 30}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["symbol"] == "INFY.NS" and body["inserted"] > 15 and body["source"] == "synthetic"
    assert compute_worker == ["market.services:candles_sync"]


def test_a_library_exchange_calendar_is_read_in_a_compute_worker_and_rebuilt_alike(compute_worker):
    sources._library_rebuilt.cache_clear()
    rebuilt = sources.calendar_for("NYSE")
    assert compute_worker == ["market.sources:library_calendar_facts"]
    sources.calendar_for("NYSE")
    assert compute_worker == ["market.sources:library_calendar_facts"]  # once per process and year
    library = library_calendar("NYSE")
    assert rebuilt.facts() == library.facts()
    day_after_thanksgiving = date(2026, 11, 27)
    assert rebuilt.session_hours(day_after_thanksgiving) == library.session_hours(day_after_thanksgiving)
    sources._library_rebuilt.cache_clear()


@pytest.mark.parametrize("exchange", sorted(LIBRARY_EXCHANGES))
def test_every_library_calendar_survives_its_facts(exchange):
    calendar = library_calendar(exchange)
    assert type(calendar).from_facts(calendar.facts()).facts() == calendar.facts()


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_what_a_web_worker_knows_of_a_provider_without_importing_it_is_what_it_is(name, settings, tmp_path):
    settings.MARKET_DATA_CSV_DIR = tmp_path
    provider = _build(name)
    assert provider_name(name) == provider.name
    assert provider_timeframes(name) == provider.timeframes


def test_a_watchlist_whose_compute_worker_does_not_answer_waits_once(
    auth_client, compute_worker, frozen, monkeypatch, settings
):
    """Not a COMPUTE_TIMEOUT per symbol: once the batch went unanswered, each symbol is served from the store."""
    auth_client.get("/api/market/historical/TCS?timeframe=1D&limit=5")  # TCS has stored candles, INFY none
    fresh()
    settings.COMPUTE_TIMEOUT = 1
    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, **kwargs: sent.append(kwargs))  # taken, never answered
    started = time.monotonic()
    body = auth_client.get("/api/market/multiple?symbols=TCS,INFY,RELIANCE,HDFCBANK").json()
    assert time.monotonic() - started < 3
    assert len(sent) == 1
    assert [(quote["symbol"], quote["stale"]) for quote in body["quotes"]] == [("TCS.NS", True)]
    assert set(body["errors"]) == {"INFY.NS", "RELIANCE.NS", "HDFCBANK.NS"}


def test_stored_candles_are_served_stale_when_no_compute_worker_answers(
    auth_client, compute_worker, frozen, monkeypatch, settings
):
    """As when the provider fails: a 200 marked stale from what is stored, not a 503."""
    auth_client.get("/api/market/historical/TCS?timeframe=1D&limit=5")
    fresh()
    settings.COMPUTE_TIMEOUT = 1
    monkeypatch.setattr(app, "send_task", lambda name, **kwargs: None)
    with time_machine.travel(
        datetime(2026, 6, 10, 6, 30, tzinfo=UTC), tick=False
    ):  # a week later: a fetch due
        response = auth_client.get("/api/market/historical/TCS?timeframe=1D&limit=5")
        assert response.status_code == 200
        assert response.json()["stale"] is True
        nothing_stored = auth_client.get("/api/market/historical/WIPRO?timeframe=1D&limit=5")
    assert nothing_stored.status_code == 503
    assert nothing_stored.json()["error"]["code"] == "compute_unavailable"


def test_an_answer_drops_this_processs_copy_of_the_symbols_version(auth_client, compute_worker, frozen):
    """A fetch in a compute worker bumps the version in Redis; the web worker's copy (kept for
    MARKET_LOCAL_CACHE_SECONDS) must not key the body it then caches, as a write here would have replaced it."""
    from market.caching import _VERSION_KEY, market_version

    market_version("TCS.NS")  # copied into this process
    cache.set(_VERSION_KEY.format(symbol="TCS.NS"), "bumped-there", 60)  # what the compute worker's store did
    assert auth_client.get("/api/market/quote/TCS").status_code == 200
    assert compute_worker == ["market.services:quote_fetch"]
    assert market_version("TCS.NS") == "bumped-there"
