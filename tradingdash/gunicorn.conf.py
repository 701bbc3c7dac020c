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
# Recycling a worker drops its WebSockets (clients reconnect); keep it rare.
max_requests = 2000
max_requests_jitter = 200
accesslog = None  # the RequestIDMiddleware logs every request as a structured line
errorlog = "-"
