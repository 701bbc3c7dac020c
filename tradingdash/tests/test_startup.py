import os
import subprocess
import sys

from django.conf import settings

SCRIPT = """
import sys
import django
django.setup()
from django.urls import get_resolver
from django.test import Client
import tradingdash.asgi  # noqa: F401 - what a gunicorn worker loads
import tradingdash.wsgi  # noqa: F401
get_resolver().url_patterns  # import every view module
Client().get("/health")
Client().get("/api/schema")
assert "tensorflow" not in sys.modules, sorted(m for m in sys.modules if m.startswith("tensorflow"))[:5]
assert "keras" not in sys.modules
# scipy.stats alone was ~57 MiB of the web worker's 160 MiB budget (issue 12): only training needs it.
assert "scipy" not in sys.modules, sorted(m for m in sys.modules if m.startswith("scipy"))[:5]
# Only sending a notification or saving a channel needs Apprise (alerts/outbound.py): ~2 MiB of each worker.
assert "apprise" not in sys.modules
# joblib only when a model artifact is read or written (predictions/ml/base.py).
assert "joblib" not in sys.modules
print("ok")
"""


def test_web_process_never_imports_what_only_background_work_needs():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tradingdash.test_settings"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=settings.BASE_DIR,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")
