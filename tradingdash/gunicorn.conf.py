"""gunicorn settings; each can be overridden with the GUNICORN_* environment variables."""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# Recycling guards against slow leaks; every restart costs seconds of Django start-up under load and a cold
# worker (per-process caches, connections), so at hundreds of requests a second 2,000 was a restart every
# few seconds of load (bench/README.md, side by side).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = max_requests // 10
accesslog = None  # the RequestIDMiddleware logs every request as a structured line
errorlog = "-"
