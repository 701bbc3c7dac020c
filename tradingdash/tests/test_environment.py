"""Settings read from `.env` and from compose's environment the way `.env.example` documents them: `KEY=value
# comment` is `value`, and `KEY=` is the setting's default."""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings

from tradingdash.environment import Env, env_file_read

EXAMPLE = django_settings.BASE_DIR / ".env.example"


@pytest.fixture
def environment():
    """os.environ as it was before the test, whatever env_file_read added to it."""
    saved = dict(os.environ)
    yield os.environ
    os.environ.clear()
    os.environ.update(saved)


def test_a_copied_env_example_reads_as_its_values_without_the_comments(environment, tmp_path):
    """`cp .env.example .env` (README, docker-compose) then `manage.py …` on the host: every commented line kept
    its comment as part of the value, and settings failed to start (`int('60   # live quotes …')`)."""
    names = set()
    for line in EXAMPLE.read_text().splitlines():
        name = line.partition("=")[0].strip()
        if name and not name.startswith("#"):
            environment.pop(name, None)
            names.add(name)
    dotenv = tmp_path / ".env"
    dotenv.write_text(EXAMPLE.read_text())
    env_file_read(dotenv)
    env = Env()
    assert env.int("QUOTE_REFRESH_SECONDS") == 60
    assert env("SECRET_KEY") == "change-me"
    assert env("MARKET_DATA_PROVIDER") == "yfinance"
    assert env.bool("DEBUG") is False
    assert env("JWT_SIGNING_KEY", default="the secret key") == "the secret key"
    assert env("CELERY_BROKER_URL", default="redis://broker") == "redis://broker"
    # The example's variables only: the machine's own may hold a '#' (tox's TOX_OVERRIDE does).
    assert names and all("#" not in os.environ[name] for name in names if name in os.environ)


def test_variables_already_set_win_over_the_env_file(environment, tmp_path):
    environment["QUOTE_REFRESH_SECONDS"] = "30"
    dotenv = tmp_path / ".env"
    dotenv.write_text("QUOTE_REFRESH_SECONDS=60   # comment\nQUOTED='a # b'\nURL=postgres://u:p#w@h/db\n")
    environment.pop("QUOTED", None)
    environment.pop("URL", None)
    env_file_read(dotenv)
    assert os.environ["QUOTE_REFRESH_SECONDS"] == "30"
    assert os.environ["QUOTED"] == "a # b"
    assert os.environ["URL"] == "postgres://u:p#w@h/db"


SCRIPT = """
import json
from django.conf import settings
print(json.dumps({
    "jwt": settings.SIMPLE_JWT["SIGNING_KEY"],
    "broker": settings.CELERY_BROKER_URL,
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "hsts_subdomains": settings.SECURE_HSTS_INCLUDE_SUBDOMAINS,
    "hsts_preload": settings.SECURE_HSTS_PRELOAD,
}))
"""


def test_empty_variables_from_compose_env_file_take_the_defaults():
    """Compose passes `.env`'s `JWT_SIGNING_KEY=` and `CELERY_BROKER_URL=` as empty variables: every JWT was
    signed with an empty key and the web, worker and beat sent tasks to Celery's default AMQP broker, not Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "CELERY_", "JWT_"))}
    secret = "a-long-random-production-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tradingdash.settings",
            "DEBUG": "0",
            "SECRET_KEY": secret,
            "REDIS_URL": "redis://redis:6379/0",
            "JWT_SIGNING_KEY": "",
            "CELERY_BROKER_URL": "",
            "CELERY_TASK_ALWAYS_EAGER": "",
            "SECURE_HSTS_SECONDS": "31536000",
            "SECURE_HSTS_INCLUDE_SUBDOMAINS": "",
            "SECURE_HSTS_PRELOAD": "",
        }
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {SCRIPT}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=django_settings.BASE_DIR,
    )
    assert result.returncode == 0, result.stderr
    read = json.loads(result.stdout.strip().splitlines()[-1])
    assert read == {
        "jwt": secret,
        "broker": "redis://redis:6379/0",
        "eager": False,
        "hsts_subdomains": True,
        "hsts_preload": True,
    }
