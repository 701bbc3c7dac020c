"""GET /health: database, cache and broker checks. Database down is "down" (503); cache or broker down is
"degraded" (200), because the API still answers from the database."""

from __future__ import annotations

import time
import uuid

import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = structlog.get_logger(__name__)


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        status = check()
    except Exception as exc:  # a failed dependency is a health result, not an error
        logger.warning("health_check_failed", check=check.__name__, error=str(exc))
        status = "down"
    return {"status": status, "ms": round((time.perf_counter() - started) * 1000, 1)}


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
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


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": _timed(check_database),
        "cache": _timed(check_cache),
        "broker": _timed(check_broker),
    }
    if checks["database"]["status"] != "ok":
        overall, code = "down", 503
    elif any(c["status"] == "down" for c in checks.values()):
        overall, code = "degraded", 200
    else:
        overall, code = "ok", 200
    return JsonResponse({"status": overall, "checks": checks, "version": settings.VERSION}, status=code)
