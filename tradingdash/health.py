"""GET /health: database, migrations, cache, broker, beat and worker checks. Database down or migrations not
applied is "down" (503): the code's queries do not match the schema. Cache, broker, beat or a queue's workers down
is "degraded" (200), because the API still answers from the database; beat and workers are "eager" when tasks run
inline (no broker), "unknown" while the cache that holds their heartbeats is down (tradingdash/heartbeats.py)."""

from __future__ import annotations

import time
import uuid

import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from tradingdash import heartbeats
from tradingdash.exceptions import error_body

logger = structlog.get_logger(__name__)


def _timed(check, *args) -> dict:
    started = time.perf_counter()
    try:
        result = check(*args)
    except Exception as exc:  # a failed dependency is a health result, not an error
        logger.warning("health_check_failed", check=check.__name__, error=str(exc))
        result = "down"
    result = {"status": result} if isinstance(result, str) else result
    return {**result, "ms": round((time.perf_counter() - started) * 1000, 1)}


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


_migrated = False  # once every migration is applied, this process's code matches the schema for good


def check_migrations() -> str:
    """ "pending" while the database lacks a migration of this code (a deploy that skipped `migrate`)."""
    global _migrated
    if _migrated:
        return "ok"
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        return "pending"
    _migrated = True
    return "ok"


def check_cache() -> str:
    key = f"health:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    ok = cache.get(key) == "1"
    cache.delete(key)
    return "ok" if ok else "down"


def check_broker() -> str:
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return "eager" if settings.CELERY_TASK_ALWAYS_EAGER else "unknown"
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


def _background_ready(cache_status: str) -> str | None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "eager"  # no beat and no workers by design (make run)
    if cache_status != "ok":
        return "unknown"
    return None


def check_beat(cache_status: str) -> dict:
    """Beat ticks every few seconds; no recent tick: nothing scheduled runs (syncs, signals, live quotes)."""
    if status := _background_ready(cache_status):
        return {"status": status}
    age = heartbeats.beat_age()
    fresh = age is not None and age <= heartbeats.STALE_AFTER
    return {"status": "ok" if fresh else "down", "age": age}


def check_workers(cache_status: str) -> dict:
    """A worker must be consuming every queue tasks are routed to; otherwise that queue's tasks wait for ever."""
    if status := _background_ready(cache_status):
        return {"status": status}
    ages = heartbeats.worker_ages()
    fresh = all(age is not None and age <= heartbeats.STALE_AFTER for age in ages.values())
    return {"status": "ok" if fresh else "down", "queues": ages}


@never_cache
@csrf_exempt  # any other method gets the JSON 405 below, not Django's CSRF page
def health(request: HttpRequest) -> JsonResponse:
    """GET or HEAD (load balancers and uptime monitors use either)."""
    if request.method not in ("GET", "HEAD"):
        body = error_body("method_not_allowed", f'Method "{request.method}" not allowed.')
        response = JsonResponse(body, status=405)
        response["Allow"] = "GET, HEAD"
        return response
    checks = {"database": _timed(check_database)}
    if checks["database"]["status"] == "ok":
        checks["migrations"] = _timed(check_migrations)
    else:
        checks["migrations"] = {"status": "unknown", "ms": 0.0}
    checks["cache"] = _timed(check_cache)
    checks["broker"] = _timed(check_broker)
    checks["beat"] = _timed(check_beat, checks["cache"]["status"])
    checks["workers"] = _timed(check_workers, checks["cache"]["status"])
    if checks["database"]["status"] != "ok" or checks["migrations"]["status"] != "ok":
        overall, code = "down", 503
    elif any(c["status"] == "down" for c in checks.values()):
        overall, code = "degraded", 200
    else:
        overall, code = "ok", 200
    return JsonResponse({"status": overall, "checks": checks, "version": settings.VERSION}, status=code)
