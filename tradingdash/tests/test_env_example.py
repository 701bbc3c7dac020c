"""`.env.example` is the operator's list of every setting: a variable read from the environment anywhere in the
project (settings, gunicorn config, app code) and missing there is a setting nobody can discover."""

import re
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
# env("X"), env.int("X", ...), os.environ.get("X"), os.getenv("X"), os.environ["X"]
READ = re.compile(
    r"""(?:\benv(?:\.\w+)?\(|os\.environ\.get\(|os\.getenv\(|os\.environ\[)\s*["']([A-Z][A-Z0-9_]+)["']"""
)
# Set by our own entry points or the test harness, not by operators.
NOT_SETTINGS = {"DJANGO_SETTINGS_MODULE"}


def _documented() -> set[str]:
    names = set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"\s*([A-Z][A-Z0-9_]+)=", line)
        if match:
            names.add(match.group(1))
    return names


def _read_by_the_app() -> dict[str, str]:
    found = {}
    skip = {".venv", "tests", "e2e", "bench", "load", "migrations", "node_modules", "staticfiles", "var"}
    for path in ROOT.rglob("*.py"):
        if skip.intersection(path.relative_to(ROOT).parts) or path.name == "test_settings.py":
            continue
        for name in READ.findall(path.read_text()):
            found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def test_every_environment_variable_the_app_reads_is_in_env_example():
    missing = {
        name: where for name, where in _read_by_the_app().items() if name not in _documented() | NOT_SETTINGS
    }
    assert not missing, f"add these to .env.example: {missing}"


def test_the_scan_sees_the_settings_module():
    read = _read_by_the_app()
    assert read["PREDICTION_TRAINING_BARS"] == "tradingdash/settings.py"
    assert read["GUNICORN_WORKERS"] == "tradingdash/gunicorn.conf.py"
