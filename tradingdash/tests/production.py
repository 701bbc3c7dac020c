"""gunicorn as in production (DEBUG off, `collectstatic` into a STATIC_ROOT of its own, WhiteNoise serving it)
on a free loopback port, against the test database; used by the static-file and browser tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from django.conf import settings

BIN = Path(sys.executable).parent
SECRET_KEY = "production-check-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
# Kept from the caller's environment; everything the app reads is set explicitly.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")


@dataclass(frozen=True)
class ProductionServer:
    base_url: str
    static_root: Path
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    """The test database pytest-django created (its name is only known once it exists)."""
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    auth = f"{user}:{db['PASSWORD']}" if db.get("PASSWORD") else user
    return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def production_env(static_root: Path) -> dict[str, str]:
    env = {key: os.environ[key] for key in INHERITED if key in os.environ}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tradingdash.settings",
            "PYTHONPATH": str(settings.BASE_DIR),
            "DEBUG": "0",
            "SECRET_KEY": SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": _database_url(),
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
            "CACHE_KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "tradingdash-test"),
            "CELERY_TASK_ALWAYS_EAGER": "1",
            "MARKET_DATA_PROVIDER": "synthetic",
            "STATIC_ROOT": str(static_root),
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


@contextlib.contextmanager
def production_server(workdir: Path) -> Iterator[ProductionServer]:
    """collectstatic (as the Docker image does at build time), then gunicorn until the block ends."""
    static_root = workdir / "static"
    env = production_env(static_root)
    subprocess.run(
        [str(BIN / "python"), "manage.py", "collectstatic", "--noinput", "-v", "0"],
        env=env,
        cwd=settings.BASE_DIR,
        check=True,
        timeout=300,
    )
    port = _free_port()
    log = workdir / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *(str(BIN / "gunicorn"), "tradingdash.asgi:application"),
                *("--config", "tradingdash/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"),
                *("--workers", "1", "--no-control-socket"),
            ],
            env=env,
            cwd=settings.BASE_DIR,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base_url}/health", timeout=2).status_code in (200, 503):
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start: {log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield ProductionServer(base_url=base_url, static_root=static_root, log=log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
