"""The quote refresher: which symbols, in batches, only while the exchange is open, each one announced."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import redis
import time_machine

from market.caching import quote_key
from market.models import Instrument
from stream import live
from stream.live import live_symbols_touch
from stream.tasks import refresh_quotes
from stream.tests import recording_provider
from tradingdash import events

pytestmark = pytest.mark.django_db

IST = ZoneInfo("Asia/Kolkata")
SESSION = datetime(2026, 11, 25, 11, 0, tzinfo=IST)  # a Wednesday, NSE open
SUNDAY = datetime(2026, 11, 29, 11, 0, tzinfo=IST)


@pytest.fixture
def provider(settings):
    settings.MARKET_DATA_PROVIDER = "stream.tests.recording_provider:build"
    recording_provider.batches.clear()
    recording_provider.failing.clear()
    yield recording_provider
    recording_provider.failing.clear()


@pytest.fixture(autouse=True)
def no_live_subscriptions(settings):
    """The live set is shared Redis state: start each test without one."""
    redis.Redis.from_url(settings.REDIS_URL).delete(live.live_key())


@pytest.fixture
def announced(announcements):
    return announcements(events.QuoteRefreshed)


@pytest.fixture
def catalogue(db):
    Instrument.objects.update(active=False)  # the seeded catalogue
    for symbol, active in [("RELIANCE.NS", True), ("TCS.NS", True), ("INFY.NS", False), ("SBIN.NS", False)]:
        # INFY: live-subscribed in the tests; SBIN: neither watched nor subscribed.
        Instrument.objects.update_or_create(symbol=symbol, defaults={"name": symbol, "active": active})


def test_refreshes_watched_and_live_symbols_in_batches_and_announces_each(
    settings, provider, announced, catalogue
):
    settings.QUOTE_BATCH_SIZE = 2
    with time_machine.travel(SESSION, tick=False):
        live_symbols_touch(["INFY.NS"])
        result = refresh_quotes.delay().get()

    assert provider.batches == [["INFY.NS", "RELIANCE.NS"], ["TCS.NS"]]
    assert result["requests"] == 2
    assert result["refreshed"] == ["INFY.NS", "RELIANCE.NS", "TCS.NS"] and result["missing"] == []
    assert sorted(e.symbol for e in announced) == ["INFY.NS", "RELIANCE.NS", "TCS.NS"]
    assert all(e.quote["price"] > 0 and e.quote["stale"] is False for e in announced)
    # The API's quote endpoint serves the refreshed quote from the cache.
    from django.core.cache import cache

    assert cache.get(quote_key("TCS.NS"))["price"] == next(
        e.quote["price"] for e in announced if e.symbol == "TCS.NS"
    )


def test_expired_live_subscriptions_are_not_refreshed(settings, provider, announced, catalogue):
    with time_machine.travel(SESSION, tick=False):
        live_symbols_touch(["INFY.NS"], ttl=-1)
        refresh_quotes.delay().get()

    assert provider.batches == [["RELIANCE.NS", "TCS.NS"]]


def test_nothing_is_fetched_while_the_exchange_is_closed(provider, announced, catalogue):
    with time_machine.travel(SUNDAY, tick=False):
        result = refresh_quotes.delay().get()

    assert provider.batches == [] and announced == []
    assert result["skipped"] == "no open exchange"


def test_an_operator_may_refresh_outside_the_session(provider, announced, catalogue):
    with time_machine.travel(SUNDAY, tick=False):
        result = refresh_quotes.delay(only_when_open=False).get()

    assert provider.batches == [["RELIANCE.NS", "TCS.NS"]]
    assert result["refreshed"] == ["RELIANCE.NS", "TCS.NS"]


def test_a_second_refresh_while_one_runs_returns_at_once(settings, provider, announced, catalogue):
    """A run waiting on the provider's request budget outlasts its period: the next one must not fetch beside it."""
    from django.core.cache import cache

    from stream.tasks import REFRESH_LEASE_KEY

    cache.set(REFRESH_LEASE_KEY, "another run", 60)
    with time_machine.travel(SESSION, tick=False):
        result = refresh_quotes.delay().get()
    assert result["skipped"] == "a refresh is already running"
    assert provider.batches == [] and announced == []
    assert cache.get(REFRESH_LEASE_KEY) == "another run"  # not released by the run that did not hold it
    cache.delete(REFRESH_LEASE_KEY)
    with time_machine.travel(SESSION, tick=False):
        result = refresh_quotes.delay().get()
    assert result["refreshed"] == ["RELIANCE.NS", "TCS.NS"]
    assert cache.get(REFRESH_LEASE_KEY) is None  # released when done


def test_a_run_ends_before_its_lease_lapses(settings):
    """The lease lapsed after REFRESH_LEASE_SECONDS (10 min) while a run waiting on the request budget batch
    after batch could go on to the worker's 30-minute limit: the next runs then fetched beside it, the very thing
    the lease is for. A run is stopped (soft limit: the lease released) before its lease lapses."""
    from stream.tasks import REFRESH_LEASE_SECONDS

    hard = refresh_quotes.time_limit or settings.CELERY_TASK_TIME_LIMIT
    soft = refresh_quotes.soft_time_limit or settings.CELERY_TASK_SOFT_TIME_LIMIT
    assert soft < hard <= REFRESH_LEASE_SECONDS


def test_an_active_price_alerts_symbol_is_refreshed_though_nobody_watches_it(
    settings, provider, announced, catalogue
):
    """SBIN is neither active, watched nor subscribed: its price alert alone puts it in the refresher's set, so the
    alert is checked on live quotes, not only on the bars a sync stores. A signal alert, or one turned off, does not."""
    from alerts.tests.factories import AlertFactory

    AlertFactory(symbol="SBIN.NS", kind="price_below", threshold=1.0)
    AlertFactory(symbol="INFY.NS", kind="signal", threshold=None, signal_type="BUY")
    AlertFactory(symbol="INFY.NS", kind="price_above", threshold=1.0, active=False)
    with time_machine.travel(SESSION, tick=False):
        result = refresh_quotes.delay().get()
    assert result["refreshed"] == ["RELIANCE.NS", "SBIN.NS", "TCS.NS"]


def test_a_later_batch_failing_keeps_what_the_earlier_ones_refreshed(
    settings, provider, announced, catalogue
):
    """Batch 1 stored and streamed RELIANCE and SBIN's quotes: the result says so, and why it stopped after it."""
    from alerts.tests.factories import AlertFactory

    AlertFactory(symbol="SBIN.NS", kind="price_below", threshold=1.0)  # a third symbol: two batches of two
    settings.QUOTE_BATCH_SIZE = 2
    provider.failing.add(2)
    with time_machine.travel(SESSION, tick=False):
        result = refresh_quotes.delay().get()
    assert provider.batches == [["RELIANCE.NS", "SBIN.NS"], ["TCS.NS"]]
    assert (result["refreshed"], result["missing"], result["requests"]) == (
        ["RELIANCE.NS", "SBIN.NS"],
        ["TCS.NS"],
        1,
    )
    assert result["error"] == "Yahoo Finance did not answer"
    assert sorted(event.symbol for event in announced) == ["RELIANCE.NS", "SBIN.NS"]


def test_a_first_batch_failing_reports_every_symbol_missing(settings, provider, catalogue):
    provider.failing.add(1)
    with time_machine.travel(SESSION, tick=False):
        result = refresh_quotes.delay().get()
    assert result["missing"] == ["RELIANCE.NS", "TCS.NS"] and result["refreshed"] == []
    assert "did not answer" in result["error"]
