"""gunicorn settings; each can be overridden with the GUNICORN_* environment variables.

Serves tradingdash.asgi:application with uvicorn workers (tradingdash.workers.AsgiWorker): HTTP and the live
stream's WebSocket from the same processes. Each worker is one event loop; Django's sync views run in its
thread pool (ASGI_THREADS threads, asgiref's default otherwise)."""

import os

# Requests run on short-lived threads under ASGI: share a connection pool per process (settings.py).
os.environ.setdefault("DATABASE_POOL", "1")

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "tradingdash.workers.AsgiWorker")
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# No recycling by default: a restart drops the worker's WebSockets (clients reconnect), fails the requests in
# flight on its keep-alive connections and leaves a cold worker (per-process caches, connections). At 1,600
# cached quotes a second, 20,000 requests was a restart every 12 s (bench/README.md, side by side). The leaks it
# guarded against were found and fixed (tradingdash/asgi_handler.py, tradingdash/malloc.py: RSS stays flat under
# load); set GUNICORN_MAX_REQUESTS to recycle anyway, with 10% jitter.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
accesslog = None  # the RequestIDMiddleware logs every request as a structured line
errorlog = "-"


def post_fork(server, worker):
    """In each worker, before it loads the app: at most WEB_MALLOC_ARENA_MAX glibc malloc arenas (2; 0 keeps
    glibc's 8 per core), as its request threads kept one each (tradingdash/malloc.py)."""
    from tradingdash.malloc import malloc_arena_max_set

    malloc_arena_max_set(int(os.environ.get("WEB_MALLOC_ARENA_MAX", "2")))
