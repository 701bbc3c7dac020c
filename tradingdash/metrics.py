"""Our own Prometheus metrics. django-prometheus adds the rest: requests, latency histograms, responses by
status and database connections/queries (see the middleware and the DB engine in settings).

Several processes (gunicorn workers, Celery workers): each process counts on its own, so a scrape of /metrics
would see one worker only. Set PROMETHEUS_MULTIPROC_DIR (an environment variable, read when prometheus_client
is imported) to an empty directory, emptied at every start, shared by all web and Celery processes of a host;
/metrics then adds up every process's files, including the Celery workers' task failures and syncs. Files are
named by process id, so the directory must not be shared across PID namespaces: docker-compose gives each
container its own tmpfs, so web's /metrics adds up its gunicorn workers but not the worker container's counts. Only "live" gauges would need gunicorn's `child_exit` hook
(`prometheus_client.multiprocess.mark_process_dead(worker.pid)`); we define none."""

from __future__ import annotations

from prometheus_client import Counter

CANDLES_SYNCED = Counter(
    "tradingdash_candles_synced",
    "Candles sent to candle upserts, by data source, timeframe and outcome (inserted, updated, or unchanged: "
    "already stored with the same values; off_session: sent for a time the exchange did not trade, not stored).",
    ["source", "timeframe", "outcome"],
)
PREDICTIONS_MADE = Counter(
    "tradingdash_predictions_made",
    "Predictions stored, by model family and timeframe.",
    ["model", "timeframe"],
)
TASK_FAILURES = Counter(
    "tradingdash_task_failures",
    "Celery tasks that failed for good (after any retries), by task name.",
    ["task"],
)
COMPUTE_OFFLOADED = Counter(
    "tradingdash_compute_offloaded",
    "Calls of offloaded functions in web workers (tradingdash/offload.py), by function and outcome (ok, error: an "
    "answer the function declares, failed, timeout, in_place: no compute worker alive or the broker failed).",
    ["function", "outcome"],
)
