"""gunicorn settings; each can be overridden with the GUNICORN_* environment variables.

Serves tradingdash.asgi:application with uvicorn workers (tradingdash.workers.AsgiWorker): HTTP and the live
stream's WebSocket from the same processes. Each worker is one event loop; Django's sync views run in its
thread pool (ASGI_THREADS threads, asgiref's default otherwise)."""

import os

# Requests run on threads lent per request under ASGI (tradingdash/asgi_handler.py), of which at most 8 idle ones
# are kept: share a connection pool per process (settings.py). An empty DATABASE_POOL (compose passes `.env`'s
# `DATABASE_POOL=`) is unset, as settings.py reads it (tradingdash/environment.py).
if not os.environ.get("DATABASE_POOL"):
    os.environ["DATABASE_POOL"] = "1"

bind = os.environ.get("GUNICORN_BIND") or "0.0.0.0:8000"
workers = int(os.environ.get("GUNICORN_WORKERS") or "3")
worker_class = os.environ.get("GUNICORN_WORKER_CLASS") or "tradingdash.workers.AsgiWorker"
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or "30")
graceful_timeout = 20
keepalive = 5
# Recycling is a safety net against leaks, rarely used: a restart drops the worker's WebSockets (clients
# reconnect), can fail requests racing on its keep-alive connections and leaves a cold worker (per-process caches,
# connections). At 1,600 cached quotes a second the former 20,000 was a restart every 12 s (bench/README.md,
# "Worker recycling"); the leaks found are fixed (tradingdash/asgi_handler.py, tradingdash/malloc.py) and RSS
# stays flat over the benchmarks' minutes, not proven over days. 500,000 (10% jitter) is hours of a busy
# dashboard; 0 turns it off.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS") or "500000")
max_requests_jitter = max_requests // 10
accesslog = None  # the RequestIDMiddleware logs every request as a structured line
errorlog = "-"


def post_fork(server, worker):
    """In each worker, before it loads the app: at most WEB_MALLOC_ARENA_MAX glibc malloc arenas (2; 0 keeps
    glibc's 8 per core), as its request threads kept one each (tradingdash/malloc.py)."""
    from tradingdash.malloc import malloc_arena_max_set

    malloc_arena_max_set(int(os.environ.get("WEB_MALLOC_ARENA_MAX") or "2"))
