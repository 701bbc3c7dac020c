"""The per-process layer in front of Redis on the hottest reads (market/caching.py, market/sources.py): a cached
quote costs no query and no Redis round trip, a sync in this process is seen at once, another process's change
at most MARKET_LOCAL_CACHE_SECONDS later."""

from datetime import UTC, datetime, timedelta

import pytest
import redis
import time_machine
from django.conf import settings as django_settings
from django.core.cache import cache

from market.caching import market_version, market_version_bump, quote_cache_get
from market.models import MarketHoliday
from market.sources import get_calendar, holidays_for, holidays_invalidate

pytestmark = pytest.mark.django_db
# Monday 2026-06-01, 12:00 IST: NSE is open.
OPEN_NOW = datetime(2026, 6, 1, 6, 30, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(OPEN_NOW, tick=False) as traveller:
        yield traveller


def redis_flush_behind_the_cache():
    """What another process (or Redis expiry) does: the shared cache changes without this process knowing."""
    redis.Redis.from_url(django_settings.CACHES["default"]["LOCATION"]).flushdb()


def test_a_cached_quote_costs_no_query(auth_client, clock, django_assert_num_queries):
    assert auth_client.get("/api/market/quote/TCS").json()["cached"] is False
    with django_assert_num_queries(0):
        body = auth_client.get("/api/market/quote/TCS").json()
    assert body["cached"] is True and body["market_status"] == "open"


def test_a_cached_quote_is_served_from_this_process_for_at_most_the_local_lifetime(
    auth_client, clock, settings
):
    settings.MARKET_LOCAL_CACHE_SECONDS = 1
    first = auth_client.get("/api/market/quote/TCS").json()
    redis_flush_behind_the_cache()
    assert auth_client.get("/api/market/quote/TCS").json()["cached"] is True  # no Redis round trip needed
    clock.shift(timedelta(seconds=1.5))
    again = auth_client.get("/api/market/quote/TCS").json()
    assert again["cached"] is False and again["price"] == first["price"]


def test_zero_local_lifetime_always_asks_redis(auth_client, clock, settings):
    settings.MARKET_LOCAL_CACHE_SECONDS = 0
    auth_client.get("/api/market/quote/TCS")
    redis_flush_behind_the_cache()
    assert auth_client.get("/api/market/quote/TCS").json()["cached"] is False


def test_a_sync_in_this_process_replaces_the_local_copies_at_once(auth_client, clock):
    auth_client.get("/api/market/quote/TCS")
    before = market_version("TCS.NS")
    market_version_bump("TCS.NS")
    assert quote_cache_get("TCS.NS") is None
    assert market_version("TCS.NS") != before
    assert market_version("TCS.NS") == cache.get("market:version:TCS.NS")


def test_another_process_version_bump_is_seen_within_the_local_lifetime(clock, settings):
    settings.MARKET_LOCAL_CACHE_SECONDS = 1
    before = market_version("TCS.NS")
    cache.set("market:version:TCS.NS", "from-elsewhere")  # another web process or a worker synced
    assert market_version("TCS.NS") == before
    clock.shift(timedelta(seconds=1.5))
    assert market_version("TCS.NS") == "from-elsewhere"


def test_a_version_redis_lost_is_replaced_by_a_new_one_never_by_a_default(clock, settings):
    """Entries cached under a version (history bodies in Redis, corporate actions in processes) must not become
    current again when Redis restarts or evicts the version key."""
    settings.MARKET_LOCAL_CACHE_SECONDS = 1
    first = market_version("TCS.NS")
    assert first == cache.get("market:version:TCS.NS") and first != "0"
    cache.delete("market:version:TCS.NS")  # Redis restarted, or evicted the key
    clock.shift(timedelta(seconds=1.5))
    second = market_version("TCS.NS")
    assert second not in {first, "0"}
    assert second == cache.get("market:version:TCS.NS")  # and every process now reads that one


def test_holidays_are_kept_per_process_and_invalidated_at_once_here(clock, settings):
    settings.HOLIDAYS_LOCAL_CACHE_SECONDS = 60
    day = OPEN_NOW.date()
    assert day not in holidays_for()
    MarketHoliday.objects.create(exchange="NSE", date=day, description="Test holiday")
    assert day not in holidays_for()  # kept until invalidated or expired
    holidays_invalidate()
    assert holidays_for()[day] == "Test holiday"
    assert get_calendar().status(OPEN_NOW).is_open is False


def test_holidays_changed_elsewhere_are_seen_within_the_local_lifetime(clock, settings):
    settings.HOLIDAYS_LOCAL_CACHE_SECONDS = 60
    day = OPEN_NOW.date()
    holidays_for()
    MarketHoliday.objects.create(exchange="NSE", date=day, description="Test holiday")
    redis_flush_behind_the_cache()  # another process invalidated the shared copy
    assert day not in holidays_for()
    clock.shift(timedelta(seconds=61))
    assert day in holidays_for()


def test_a_quote_fetched_while_closed_is_cached_until_the_session_opens(auth_client, settings):
    # 09:12 IST on a trading day: NSE opens at 09:15. With MARKET_DATA_CACHE_TTL for every closed-market quote,
    # the pre-open quote was served as current (cached, not stale, market_status "open") until 09:17.
    # The cache keeps real (Redis) time, so its expiry is read rather than waited for.
    from market.caching import quote_key

    settings.MARKET_DATA_CACHE_TTL = 300
    with time_machine.travel(datetime(2026, 6, 1, 3, 42, tzinfo=UTC), tick=False):
        body = auth_client.get("/api/market/quote/TCS").json()
    assert body["market_status"] != "open" and body["cached"] is False
    assert 0 < cache.ttl(quote_key("TCS.NS")) <= 181


def test_a_quote_fetched_after_the_close_keeps_the_closed_market_lifetime(auth_client, settings):
    settings.MARKET_DATA_CACHE_TTL = 300
    with time_machine.travel(datetime(2026, 6, 1, 11, 30, tzinfo=UTC), tick=False):  # 17:00 IST
        auth_client.get("/api/market/quote/TCS")
    from market.caching import quote_key

    assert cache.ttl(quote_key("TCS.NS")) > 290
