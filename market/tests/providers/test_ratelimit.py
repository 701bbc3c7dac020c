"""The request budget shared through Redis (market.providers.ratelimit), against the real Redis of the test
settings. Two limiters on one key stand for two processes: each has its own connection."""

import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
import redis
from structlog.testing import capture_logs

from market.providers.errors import RateLimited
from market.providers.ratelimit import COOLDOWN_SECONDS, RedisSlidingWindowLimiter
from market.tests.providers.fake_clock import FakeClock
from market.tests.providers.fake_yahoo import FakeYahooSession
from market.timeframes import Timeframe

DEAD_REDIS = "redis://127.0.0.1:1/0"


class NoFallback:
    """A fallback that must not be used while Redis answers."""

    def acquire(self, limit: int, *, max_wait: float | None = None) -> float:
        raise AssertionError("fell back to the per-process limiter while Redis was up")


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=0.1, socket_timeout=0.5)


@pytest.fixture
def redis_url(settings) -> str:
    return settings.REDIS_URL


@pytest.fixture
def key(redis_url):
    key = f"test:ratelimit:{uuid.uuid4().hex}"
    yield key
    connect(redis_url).delete(key)


@pytest.fixture
def make_limiter(redis_url, key):
    """A limiter on the shared test key, as another process would build it: its own Redis connection."""

    def make(**options) -> RedisSlidingWindowLimiter:
        arguments = {"client": connect(redis_url), "key": key, "fallback": NoFallback(), "window": 1.0}
        arguments.update(options)
        return RedisSlidingWindowLimiter(**arguments)

    return make


def busiest_window(starts: list[float], window: float) -> int:
    """The most calls that started in any `window` seconds (a half-open interval from one start)."""
    return max(sum(1 for other in starts if start <= other < start + window) for start in starts)


class TestSharedBudget:
    def test_two_processes_on_one_key_never_start_more_than_the_limit_in_a_window(self, make_limiter):
        clock = FakeClock()  # one wall clock for both "processes"; waiting moves it
        first = make_limiter(clock=clock, sleep=clock.sleep)
        second = make_limiter(clock=clock, sleep=clock.sleep)
        starts = []
        for _ in range(5):
            for limiter in (first, second):
                limiter.acquire(3)
                starts.append(clock.now)
        assert starts == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]
        assert busiest_window(starts, 1.0) == 3
        assert clock.sleeps == [1.0, 1.0, 1.0]

    def test_a_process_waits_only_until_the_oldest_start_of_another_leaves_the_window(self, make_limiter):
        clock = FakeClock()
        first = make_limiter(clock=clock, sleep=clock.sleep, window=60.0)
        second = make_limiter(clock=clock, sleep=clock.sleep, window=60.0)
        first.acquire(2)
        clock.now = 45.0
        second.acquire(2)
        assert first.acquire(2) == pytest.approx(15.0)
        assert clock.now == pytest.approx(60.0)

    def test_concurrent_callers_on_separate_connections_get_exactly_the_limit(
        self, make_limiter, redis_url, key
    ):
        # Redis's own clock; a minute-long window that cannot slide during the test.
        limiters = [make_limiter(window=60.0) for _ in range(2)]
        barrier = threading.Barrier(12)
        admitted, refused = [], []

        def call(limiter: RedisSlidingWindowLimiter) -> None:
            barrier.wait(5)
            try:
                admitted.append(limiter.acquire(5, max_wait=0))
            except RateLimited as error:
                refused.append(error.retry_after)

        threads = [threading.Thread(target=call, args=(limiters[i % 2],)) for i in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert admitted == [0] * 5
        assert len(refused) == 7 and all(1 <= seconds <= 60 for seconds in refused)
        assert connect(redis_url).zcard(key) == 5

    def test_separate_processes_together_stay_within_the_budget(self, redis_url, key, settings):
        # Each process takes slots as fast as the budget allows, from a common start, for one second: with 3 calls
        # per 0.5 s, together at most 6 (9 allowing for the gap between Redis's clock and theirs), where two
        # per-process budgets take 12.
        start = time.time() + 3.0  # after both have imported
        script = (
            "import sys, time, redis\n"
            "from market.providers.ratelimit import RedisSlidingWindowLimiter\n"
            "url, key, start = sys.argv[1], sys.argv[2], float(sys.argv[3])\n"
            "limiter = RedisSlidingWindowLimiter(client=redis.Redis.from_url(url), key=key, fallback=None, window=0.5)\n"
            "time.sleep(max(start - time.time(), 0))\n"
            "admitted = 0\n"
            "while True:\n"
            "    limiter.acquire(3)\n"
            "    if time.time() >= start + 1.0:\n"
            "        break\n"
            "    admitted += 1\n"
            "print(admitted)\n"
        )
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", script, redis_url, key, repr(start)],
                cwd=settings.BASE_DIR,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        admitted = [int(process.communicate(timeout=30)[0]) for process in processes]
        assert all(process.returncode == 0 for process in processes)
        assert 3 <= sum(admitted) <= 9

    def test_on_redis_time_the_window_slides_and_the_key_expires(self, make_limiter, redis_url, key):
        first, second = make_limiter(window=0.3), make_limiter(window=0.3)
        assert first.acquire(2) == 0
        assert second.acquire(2) == 0
        waited = first.acquire(2, max_wait=5.0)  # real sleeping, on Redis's clock
        assert 0.05 < waited <= 0.3
        assert 0 < connect(redis_url).pttl(key) <= 300

    def test_past_max_wait_raises_rate_limited_with_the_time_until_a_slot_frees(self, make_limiter):
        clock = FakeClock()
        first = make_limiter(clock=clock, sleep=clock.sleep, window=60.0)
        second = make_limiter(clock=clock, sleep=clock.sleep, window=60.0)
        first.acquire(1)
        clock.now = 10.0
        with pytest.raises(RateLimited, match="shared by every process") as raised:
            second.acquire(1, max_wait=2.0)
        assert raised.value.retry_after == 50
        assert clock.sleeps == []
        clock.now = 58.5
        assert second.acquire(1, max_wait=2.0) == pytest.approx(1.5)

    def test_limit_must_allow_a_call(self, make_limiter):
        with pytest.raises(ValueError):
            make_limiter().acquire(0)


class TestRedisUnreachable:
    def test_falls_back_to_the_process_budget_and_logs_the_outage_once(self, make_limiter, yfinance_module):
        clock = FakeClock()
        local = yfinance_module.SlidingWindowLimiter(window=60.0, clock=clock, sleep=clock.sleep)
        limiter = make_limiter(client=connect(DEAD_REDIS), fallback=local, window=60.0)
        with capture_logs() as logs:
            assert limiter.acquire(2) == 0
            assert limiter.acquire(2) == 0
            with pytest.raises(RateLimited) as raised:  # the process's own budget still holds
                limiter.acquire(2, max_wait=1.0)
            assert raised.value.retry_after == 60
            assert limiter.acquire(2) == pytest.approx(60.0)
        assert [entry["event"] for entry in logs] == ["rate_limiter_redis_unavailable"]

    def test_redis_is_skipped_for_a_cooldown_then_tried_again_and_its_return_logged(
        self, make_limiter, yfinance_module, redis_url, key
    ):
        clock = FakeClock()
        monotonic = FakeClock()
        local = yfinance_module.SlidingWindowLimiter(clock=clock, sleep=clock.sleep)
        limiter = make_limiter(client=connect(DEAD_REDIS), fallback=local, monotonic=monotonic)
        limiter.acquire(5)
        limiter.client = connect(redis_url)  # Redis is back, but within the cool-down it is not asked
        limiter.acquire(5)
        assert connect(redis_url).zcard(key) == 0
        monotonic.now += COOLDOWN_SECONDS
        with capture_logs() as logs:
            limiter.acquire(5)
            limiter.acquire(5)
        assert connect(redis_url).zcard(key) == 2
        assert [entry["event"] for entry in logs] == ["rate_limiter_redis_recovered"]

    def test_a_fetch_does_not_fail_when_the_budgets_redis_is_down(
        self, make_limiter, yfinance_module, yfinance_cache_dir, nse_calendar
    ):
        from yfinance.data import YfData

        YfData.cache_get.cache_clear()
        clock = FakeClock()
        local = yfinance_module.SlidingWindowLimiter(clock=clock, sleep=clock.sleep)
        provider = yfinance_module.YFinanceProvider(
            session=FakeYahooSession({("RELIANCE.NS", "1d"): "reliance_ns_1d_2026-10.json"}),
            cache_dir=yfinance_cache_dir,
            calendar=nse_calendar,
            clock=lambda: datetime(2026, 11, 11, 12, 0, tzinfo=UTC),
            limiter=make_limiter(client=connect(DEAD_REDIS), fallback=local),
        )
        candles = provider.fetch_candles(
            "RELIANCE.NS",
            Timeframe.D1,
            start=datetime(2026, 10, 12, tzinfo=UTC),
            end=datetime(2026, 10, 24, tzinfo=UTC),
        )
        assert len(candles) > 0


class TestProviderFromSettings:
    @pytest.fixture
    def build(self, settings, monkeypatch, yfinance_module, yfinance_cache_dir):
        settings.DATA_DIR = yfinance_cache_dir
        monkeypatch.setattr("market.sources._providers", {})

        def build():
            from market.sources import get_provider

            return get_provider("yfinance")

        return build

    def test_with_redis_the_budget_is_shared_through_it(self, build, settings, yfinance_module):
        limiter = build().limiter
        assert isinstance(limiter, RedisSlidingWindowLimiter)
        assert limiter.key == f"{settings.CACHE_KEY_PREFIX}:ratelimit:yfinance"
        assert limiter.fallback is yfinance_module.process_limiter
        assert limiter.window == 60.0
        kwargs = limiter.client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == settings.REDIS_SOCKET_TIMEOUT
        server = connect(settings.REDIS_URL)
        assert server.zcard(limiter.key) == 0
        assert limiter.acquire(settings.YFINANCE_MAX_REQUESTS_PER_MINUTE) == 0
        assert server.zcard(limiter.key) == 1  # recorded in the Redis the settings name
        server.delete(limiter.key)

    def test_without_redis_the_budget_is_the_processs_own(self, build, settings, yfinance_module):
        settings.REDIS_URL = ""
        assert build().limiter is yfinance_module.process_limiter
