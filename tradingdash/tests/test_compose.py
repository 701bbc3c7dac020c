"""docker-compose.yml cannot run here (no Docker engine); these pin the properties operators rely on."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath

import yaml
from django.conf import settings

from tradingdash.environment import env_file_parse

ROOT = Path(settings.BASE_DIR)

COMPOSE = yaml.safe_load((Path(settings.BASE_DIR) / "docker-compose.yml").read_text())


def test_redis_persists_the_broker_queue_across_restarts():
    redis = COMPOSE["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    assert redis["volumes"][0].split(":")[0] in COMPOSE["volumes"]


def test_exactly_one_beat():
    assert COMPOSE["services"]["beat"]["deploy"]["replicas"] == 1


# --- What each service's Django settings resolve to under compose, with `.env` copied from `.env.example` as the
# README says (compose passes it as env_file; `environment:` wins; `${VAR:-default}` is read from `.env`).
_INTERPOLATION = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")
_SETTINGS_READ = """
import json
from django.conf import settings
print(json.dumps({"MEDIA_ROOT": str(settings.MEDIA_ROOT), "MARKET_DATA_CSV_DIR": str(settings.MARKET_DATA_CSV_DIR)}))
"""


def _service_environment(service: str) -> dict[str, str]:
    dotenv = env_file_parse((ROOT / ".env.example").read_text())
    dotenv["SECRET_KEY"] = "compose-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"

    def interpolate(value: str) -> str:
        return _INTERPOLATION.sub(lambda m: dotenv.get(m.group(1)) or m.group(3) or "", str(value))

    environment = dict(dotenv)
    environment.update(
        {key: interpolate(value) for key, value in COMPOSE["services"][service]["environment"].items()}
    )
    return environment


def _resolved_settings(service: str) -> dict[str, str]:
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env.update(
        _service_environment(service), DJANGO_SETTINGS_MODULE="tradingdash.settings", PYTHONPATH=str(ROOT)
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {_SETTINGS_READ}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",  # the image's WORKDIR is not the checkout: a relative path must not look right by chance
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _mounts(service: str) -> dict[str, str]:
    return {volume.split(":")[1]: volume.split(":")[0] for volume in COMPOSE["services"][service]["volumes"]}


def test_trained_models_are_on_the_volume_web_and_worker_share():
    """`.env.example`'s MEDIA_ROOT=./var/media put each container's model artifacts in its own writable layer: the
    web could not load what the worker trained, and every deploy (containers recreated) lost all of them."""
    media = {service: _resolved_settings(service)["MEDIA_ROOT"] for service in ("web", "worker", "worker-ml")}
    assert media["web"] == media["worker"] == media["worker-ml"]
    path = PurePosixPath(media["web"])
    assert path.is_absolute(), path
    [mount] = [point for point in _mounts("web") if path.is_relative_to(point)]
    assert (
        _mounts("web")[mount] == _mounts("worker-ml")[mount] and _mounts("web")[mount] in COMPOSE["volumes"]
    )


def test_the_image_leaves_out_local_secrets_and_state():
    """Without a .dockerignore, `COPY . .` baked the operator's .env (SECRET_KEY, passwords) into an image layer,
    with the host's .venv, SQLite databases and model artifacts."""
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()}
    assert {".env", ".venv", "var/", "*.db", ".git"} <= ignored
    assert "!.env.example" in ignored  # documentation, no secret


def test_metrics_add_up_the_web_workers():
    """Compose runs 3 gunicorn workers: without PROMETHEUS_MULTIPROC_DIR each scrape of /metrics read one worker's
    counters at random (rates jumping, counters seen resetting). The directory must exist in every container that
    imports the app (prometheus_client fails otherwise) and start empty (a tmpfs)."""
    for service in ("web", "worker", "worker-ml", "beat", "migrate"):
        directory = _service_environment(service).get("PROMETHEUS_MULTIPROC_DIR")
        assert directory, service
        assert directory in COMPOSE["services"][service].get("tmpfs", []), service


def _queues(service: str) -> set[str]:
    command = COMPOSE["services"][service].get("command") or []
    if "worker" not in command:
        return set()
    return set(command[command.index("-Q") + 1].split(","))


def test_every_queue_has_a_worker_and_trainings_never_hold_up_syncs():
    """One worker consumed `default` and `ml` with two processes: two trainings (the nightly retraining fans out
    one per instrument; users start more) took both, and the intraday syncs queued behind them expired (10
    minutes) unrun, leaving candles stale."""
    consumed = {service: _queues(service) for service in COMPOSE["services"]}
    routed = {settings.CELERY_TASK_DEFAULT_QUEUE} | {r["queue"] for r in settings.CELERY_TASK_ROUTES.values()}
    assert routed <= set().union(*consumed.values())
    for service, queues in consumed.items():
        if settings.CELERY_TASK_DEFAULT_QUEUE in queues:
            assert queues.isdisjoint(routed - {settings.CELERY_TASK_DEFAULT_QUEUE}), service
