"""Scripts run in a fresh Python process: what a new web worker, Celery worker or command starts from. For tests
of what a process imports or configures at start, which this test process has long since done."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def settings_env(**extra: str) -> dict[str, str]:
    """This process's environment with the test settings, plus `extra`."""
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "tradingdash.test_settings", **extra}


def assert_script_passes(
    script: str, *, env: dict[str, str] | None = None, timeout: int = 120
) -> subprocess.CompletedProcess:
    """Run `script` with this interpreter from the project's root, stdin closed: it must exit 0 and print `ok`
    last (its own asserts say what failed). Returns the finished process (its stderr: the logs)."""
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok"), result.stdout[-2000:]
    return result
