"""Liveness of the background processes for /health: beat (each scheduler tick) and every worker (Celery's own
heartbeat, every 2 s, in its main process) write the time into the shared cache; /health reads how old it is.
Without these /health said "ok" with no beat (nothing scheduled: no syncs, signals, quotes) and no worker
consuming a queue (every queued task waiting for ever)."""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.core.cache import cache

BEAT_KEY = "health:beat"
WORKER_KEY = "health:worker:{queue}"
# A process writes at most this often; a heartbeat older than STALE_AFTER is a process gone (or unable to reach
# the cache, which /health reports itself).
WRITE_EVERY = 10.0
STALE_AFTER = 60.0

_lock = threading.Lock()
_written: dict[str, float] = {}
_consumer = None


def _write(keys: list[str]) -> None:
    now = time.time()
    with _lock:
        due = [key for key in keys if now - _written.get(key, 0.0) >= WRITE_EVERY]
        for key in due:
            _written[key] = now
    if due:
        cache.set_many(dict.fromkeys(due, now), timeout=int(STALE_AFTER * 2))


def beat_alive() -> None:
    _write([BEAT_KEY])


def worker_consumer_set(consumer) -> None:
    """The worker's consumer (Celery's worker_ready), to read which queues it consumes at each heartbeat."""
    global _consumer
    _consumer = consumer


def worker_alive() -> None:
    task_consumer = getattr(_consumer, "task_consumer", None)
    if task_consumer is None:
        return
    _write([WORKER_KEY.format(queue=queue.name) for queue in task_consumer.queues])


def queues_routed() -> list[str]:
    """Every queue the app sends tasks to: each needs a worker (the compute queue only while web workers hand
    work to it, COMPUTE_OFFLOAD)."""
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values() if "queue" in route}
    if not settings.COMPUTE_OFFLOAD:
        routed.discard(settings.COMPUTE_QUEUE)
    return sorted({settings.CELERY_TASK_DEFAULT_QUEUE, *routed})


def _age(stamp, now: float) -> float | None:
    return None if stamp is None else round(max(0.0, now - float(stamp)), 1)


def beat_age() -> float | None:
    """Seconds since beat last ticked, None when it never did (or its heartbeat expired)."""
    return _age(cache.get(BEAT_KEY), time.time())


def worker_ages() -> dict[str, float | None]:
    """Seconds since a worker consuming each routed queue last beat, None when none did."""
    keys = {queue: WORKER_KEY.format(queue=queue) for queue in queues_routed()}
    found = cache.get_many(list(keys.values()))
    now = time.time()
    return {queue: _age(found.get(key), now) for queue, key in keys.items()}


def heartbeats_forget() -> None:
    """Tests: this process has written nothing yet."""
    with _lock:
        _written.clear()
