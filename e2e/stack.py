"""The processes of an end-to-end run: a private redis-server, a Celery worker and beat, and gunicorn (ASGI: uvicorn
workers serving HTTP and the live stream's WebSocket, as in production), each in its own process group with its log in a file; plus the e2e PostgreSQL database, and a broker client for the test."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import redis
import requests
from celery import Celery

from tradingdash.schedule import BEAT_SCHEDULE

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
POSTGRES_URL = os.environ.get("E2E_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("E2E_DATABASE_NAME", "tradingdash_e2e")  # dropped and re-created per run
VISIBILITY_TIMEOUT = 10  # seconds before an unacknowledged message is handed out again
# Kept from the caller's environment; everything else the app reads is set explicitly below.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "USER", "LOGNAME", "TZ")
SMALL_MODELS = {
    "random_forest": {"n_estimators": 25, "n_jobs": 1},
    "svr": {"C": 0.5},
    "lstm": {"epochs": 2, "units": 8, "lookback": 10, "patience": 1},
}
PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(
    check: Callable[[], Any], *, timeout: float, interval: float = 0.2, what: str = "condition"
) -> Any:
    """Poll `check` until it returns something truthy (returned). Exceptions count as "not yet", except failed
    assertions, which fail at once."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = check()
        except AssertionError:
            raise
        except Exception as exc:
            result, last_error = None, exc
        if result:
            return result
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"Timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


def _die_with_parent() -> None:
    """In the child before exec: its own process group, and SIGKILL if the test process dies without cleanup."""
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Service:
    """One long-running process (and its children) in its own process group; each start gets a new log file."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], log_dir: Path):
        self.name, self.argv, self.env, self.log_dir = name, argv, env, log_dir
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.starts = 0

    def start(self) -> None:
        assert not self.running, f"{self.name} is already running"
        self.starts += 1
        self.log_path = self.log_dir / f"{self.name}-{self.starts}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 (our own argv)
                self.argv,
                env=self.env,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal_group(self, signum: int) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM the whole group, then SIGKILL what is left; never leaves children behind."""
        if self.process is None:
            return
        self.signal_group(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the whole group at once (a crash: no shutdown code runs) and reap the leader."""
        if self.process is None:
            return
        self.signal_group(signal.SIGKILL)
        self.process.wait(timeout=30)
        # The group's other members (pool children) are re-parented and reaped by init; wait until they are gone.
        wait_for(lambda: not _group_alive(self.pid), timeout=30, what=f"{self.name} process group to exit")

    def mark(self) -> tuple[Path | None, int]:
        """A position in the current log, for `log_since`."""
        size = self.log_path.stat().st_size if self.log_path and self.log_path.exists() else 0
        return self.log_path, size

    def log_since(self, mark: tuple[Path | None, int]) -> str:
        """What was logged after `mark` (the whole current log if the service was restarted since)."""
        path, offset = mark
        if path != self.log_path:
            offset = 0
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def log(self, all_starts: bool = False) -> str:
        paths = sorted(self.log_dir.glob(f"{self.name}-*.log")) if all_starts else [self.log_path]
        return "".join(p.read_text(errors="replace") for p in paths if p is not None and p.exists())

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies still count as members; treat a group made only of zombies as gone.
    for status in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = status.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


class Stack:
    """The whole system under test: PostgreSQL database, private Redis, worker, beat, gunicorn."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.log_dir = workdir / "logs"
        self.data_dir = workdir / "data"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.redis_port = free_port()
        self.web_port = free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.database_url = f"{POSTGRES_URL}/{DB_NAME}"
        self.base_url = f"http://127.0.0.1:{self.web_port}"
        self.ws_url = f"ws://127.0.0.1:{self.web_port}/ws/stream"
        self.faults_file = self.data_dir / "faults.json"
        self.env = self._base_env()
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            raise RuntimeError(
                "The e2e tests start their own Redis: install redis-server (apt install redis-server)"
            )
        self.redis = Service(
            "redis",
            [
                redis_server,
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            env=self.env,
            log_dir=self.log_dir,
        )
        self.worker = self._app_service(
            "worker",
            [
                str(BIN / "celery"),
                "-A",
                "tradingdash",
                "worker",
                "-Q",
                "default,ml,compute",
                "-c",
                "2",
                "--without-gossip",
                "--without-mingle",
                "-n",
                "e2e@%h",
                "-l",
                "info",
            ],
        )
        self.beat = self._app_service(
            "beat",
            [
                str(BIN / "celery"),
                "-A",
                "tradingdash",
                "beat",
                "-l",
                "info",
                "--pidfile",
                str(workdir / "beat.pid"),
                "-s",
                str(workdir / "celerybeat-schedule"),
            ],
        )
        self.web = self._app_service(
            "web",
            [
                str(BIN / "gunicorn"),
                "tradingdash.asgi:application",
                "--config",
                "tradingdash/gunicorn.conf.py",
                "-b",
                f"127.0.0.1:{self.web_port}",
                "-w",
                "2",
                "--no-control-socket",  # gunicorn's default socket is one path per user, shared by every run
            ],
        )
        self.services = [self.web, self.beat, self.worker, self.redis]
        self.paused_entries: list[str] = []
        self._celery: Celery | None = None

    def _base_env(self) -> dict[str, str]:
        env = {key: os.environ[key] for key in INHERITED if key in os.environ}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "tradingdash.settings",
                "PYTHONPATH": str(REPO),
                "PYTHONUNBUFFERED": "1",
                "DEBUG": "0",
                "SECRET_KEY": "e2e-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url,
                "CELERY_BROKER_URL": self.redis_url,
                "CELERY_RESULT_BACKEND": "django-db",
                "CELERY_TASK_ALWAYS_EAGER": "0",
                "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
                "CACHE_KEY_PREFIX": "e2e",
                "MARKET_DATA_PROVIDER": "synthetic",
                "DATA_DIR": str(self.data_dir),
                "PREDICTION_MODEL_PARAMS": json.dumps(SMALL_MODELS),
                "PREDICTION_TRAINING_BARS": "600",
                # Several users and many generation requests in a minute, all from 127.0.0.1.
                "AUTH_THROTTLE_RATE": "1000/minute",
                "GENERATION_THROTTLE_RATE": "1000/minute",
                "LOG_FORMAT": "json",
                "LOG_LEVEL": "INFO",
                "TF_CPP_MIN_LOG_LEVEL": "2",
                "TF_ENABLE_ONEDNN_OPTS": "0",
                "E2E_FAULTS_FILE": str(self.faults_file),
                "STREAM_HEARTBEAT_SECONDS": "1",  # the live stream's heartbeat, seen within a test's patience
                # Webhook receivers run in the test process, on loopback; a failed delivery is retried within seconds.
                "ALERT_WEBHOOK_ALLOW_PRIVATE": "1",
                "ALERT_DELIVERY_RETRY_BACKOFF": "1",
            }
        )
        return env

    def _app_service(self, name: str, argv: list[str]) -> Service:
        return Service(name, argv, env=self.env, log_dir=self.log_dir)

    # --- PostgreSQL

    def connect(self, **kwargs: Any) -> psycopg.Connection:
        return psycopg.connect(self.database_url, autocommit=True, **kwargs)

    def query(self, sql: str, params: Any = None) -> list[tuple]:
        with self.connect() as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description is not None else []

    def create_database(self) -> None:
        with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [DB_NAME]
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}"')
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
        self.manage("migrate", "--noinput")

    def manage(self, *args: str, timeout: float = 120) -> str:
        """Run manage.py in the app's environment (a one-off admin process, like an operator would)."""
        result = subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args[:1])} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def add_instrument(self, symbol: str, *, active: bool = False) -> None:
        """A catalogue entry the synthetic provider serves; inactive ones stay out of the scheduled syncs."""
        self.query(
            "INSERT INTO market_instrument (symbol, name, exchange, currency, kind, active, created_at, updated_at)"
            " VALUES (%s, %s, 'NSE', 'INR', 'equity', %s, now(), now()) ON CONFLICT (symbol) DO NOTHING",
            [symbol, f"e2e {symbol}", active],
        )

    def schedule(self, name: str, task: str, *, every: float, args: list | None = None, **extra: Any) -> None:
        """Add (or replace) a django-celery-beat interval entry through the ORM, as staff would in admin; the
        running beat picks the change up within its 5-second loop."""
        code = (
            "import json\n"
            "from django_celery_beat.models import IntervalSchedule, PeriodicTask\n"
            f"interval, _ = IntervalSchedule.objects.get_or_create(every={int(every)}, period='seconds')\n"
            f"PeriodicTask.objects.update_or_create(name={name!r}, defaults=dict(task={task!r}, "
            f"interval=interval, args=json.dumps({args or []!r}), enabled=True, **{extra!r}))\n"
        )
        self.manage("shell", "-c", code)

    def unschedule_production_entries(self) -> list[str]:
        """Pause the real schedule (crontabs) in this run so it never competes with the tests for the worker."""
        rows = self.query(
            "UPDATE django_celery_beat_periodictask SET enabled = false"
            " WHERE name NOT LIKE %s AND enabled RETURNING name",
            ["e2e-%"],
        )
        # What the ORM's signals do on every change: tell the running beat to reload its schedule.
        self.query("UPDATE django_celery_beat_periodictasks SET last_update = now() WHERE ident = 1")
        self.paused_entries = sorted(name for (name,) in rows)
        return self.paused_entries

    def periodic_runs(self, name: str) -> int:
        """How many runs of beat's entry `name` have succeeded (the results record which entry sent them)."""
        [(count,)] = self.query(
            "SELECT count(*) FROM django_celery_results_taskresult"
            " WHERE periodic_task_name = %s AND status = 'SUCCESS'",
            [name],
        )
        return count

    def wait_periodic_runs(self, name: str, more: int = 2, timeout: float = 60) -> None:
        seen = self.periodic_runs(name)
        wait_for(
            lambda: self.periodic_runs(name) >= seen + more, timeout=timeout, what=f"{more} runs of {name}"
        )

    def task_row(self, task_id: str) -> dict[str, Any] | None:
        rows = self.query(
            "SELECT status, result, periodic_task_name, task_name, worker, date_started, date_done"
            " FROM django_celery_results_taskresult WHERE task_id = %s",
            [task_id],
        )
        if not rows:
            return None
        keys = ("status", "result", "periodic_task_name", "task_name", "worker", "date_started", "date_done")
        row = dict(zip(keys, rows[0], strict=True))
        row["result"] = json.loads(row["result"]) if row["result"] else None
        return row

    def wait_task(self, task_id: str, *, status: str = "SUCCESS", timeout: float = 90) -> dict[str, Any]:
        def reached():
            row = self.task_row(task_id)
            if row and row["status"] == "FAILURE" and status != "FAILURE":
                raise AssertionError(f"task {task_id} failed: {row['result']}")
            return row if row and row["status"] == status else None

        try:
            return wait_for(reached, timeout=timeout, interval=0.25, what=f"task {task_id} to reach {status}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; last row: {self.task_row(task_id)}") from None

    # --- Redis and the broker

    def redis_client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, socket_connect_timeout=1, socket_timeout=2)

    def start_redis(self) -> None:
        self.redis.start()
        wait_for(lambda: self.redis_client().ping(), timeout=20, what="redis-server to answer PING")

    @property
    def celery(self) -> Celery:
        """A bare Celery client on the private broker: sends tasks by name, as beat and the API do."""
        if self._celery is None:
            self._celery = Celery("e2e-client", broker=self.redis_url, set_as_current=False)
            self._celery.conf.update(
                task_default_queue="default", broker_connection_retry_on_startup=True, task_serializer="json"
            )
        return self._celery

    def send(self, task: str, *, args: list | None = None, kwargs: dict | None = None) -> str:
        task_id = uuid.uuid4().hex
        queue = "ml" if task.startswith("predictions.train") else "default"
        self.celery.send_task(task, args=args or [], kwargs=kwargs or {}, task_id=task_id, queue=queue)
        return task_id

    def canary(self, *, timeout: float = 90) -> dict[str, Any]:
        """A real task through broker, worker and result backend: proves the pipeline is up."""
        return self.wait_task(self.send("predictions.score_predictions"), timeout=timeout)

    # --- the app's processes

    def start_worker(self) -> None:
        self.worker.start()
        self.canary()

    def start_web(self) -> None:
        self.web.start()
        wait_for(
            lambda: requests.get(f"{self.base_url}/health", timeout=5).status_code == 200,
            timeout=60,
            what="gunicorn to answer /health",
        )

    def start_beat(self) -> None:
        self.beat.start()
        # Beat installs the schedule of tradingdash.schedule into its tables when it starts.
        wait_for(
            lambda: (
                self.query(
                    "SELECT count(*) FROM django_celery_beat_periodictask WHERE name = ANY(%s)",
                    [list(BEAT_SCHEDULE)],
                )
                == [(len(BEAT_SCHEDULE),)]
            ),
            timeout=60,
            what="beat to install the schedule",
        )

    def _start(self, service: Service) -> None:
        {self.worker: self.start_worker, self.web: self.start_web, self.beat: self.start_beat}[service]()

    def restart(self, service: Service, **env: str) -> None:
        """Stop `service` and start it again, with these changes to the session's environment."""
        service.stop()
        service.env = {**self.env, **env}
        self._start(service)

    def canary_supervised(self, *, timeout: float = 120) -> bool:
        """The canary, with the worker under a supervisor as deployed (compose: restart: unless-stopped): if it
        exits while we wait, it is started again. Returns whether that was needed."""
        task_id = self.send("predictions.score_predictions")
        restarted = False

        def done() -> bool:
            nonlocal restarted
            if not self.worker.running:
                self.worker.stop()  # reap it and whatever is left of its group
                self.worker.start()
                restarted = True
            row = self.task_row(task_id)
            return bool(row and row["status"] == "SUCCESS")

        wait_for(done, timeout=timeout, interval=0.25, what=f"canary {task_id} (worker supervised)")
        return restarted

    def ensure_up(self) -> None:
        """Bring back whatever a fault test left down, with the session's environment."""
        if not self.redis.running:
            self.start_redis()
        for service in (self.worker, self.web, self.beat):
            if not service.running or service.env != self.env:
                self.restart(service)

    def stop_all(self) -> None:
        for service in self.services:
            with contextlib.suppress(Exception):
                service.stop()
        if self._celery is not None:
            self._celery.close()
