from django.core.cache import caches
from structlog.testing import capture_logs

from tradingdash import cache as resilient


def test_failures_are_misses_and_logged_once_per_outage(dead_cache):
    with capture_logs() as logs:
        for _ in range(5):
            assert dead_cache.get("k", "fallback") == "fallback"
            assert dead_cache.set("k", 1) is False
            assert dead_cache.get_many(["a", "b"]) == {}
    assert [entry["event"] for entry in logs] == ["cache_unavailable"]
    assert resilient.cache_is_down()


def test_recovery_is_logged_once(dead_cache, settings):
    dead_cache.get("k")
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:6379/15"}}
    with capture_logs() as logs:
        caches["default"].set("k", 1)
        caches["default"].get("k")
    assert [entry["event"] for entry in logs] == ["cache_recovered"]
    assert not resilient.cache_is_down()


def test_after_a_failure_redis_is_skipped_for_a_cooldown(dead_cache, monkeypatch):
    calls = []
    original = dead_cache.client.get
    monkeypatch.setattr(dead_cache.client, "get", lambda *a, **k: calls.append(1) or original(*a, **k))
    dead_cache.get("k")
    dead_cache.get("k")
    dead_cache.get("k")
    assert len(calls) == 1  # the first call timed out; the next ones did not wait on Redis
    monkeypatch.setattr(resilient.time, "monotonic", lambda: float("inf"))
    dead_cache.get("k")
    assert len(calls) == 2  # after the cool-down it tries again
