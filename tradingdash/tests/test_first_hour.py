"""What a new user meets under `make run` (DEBUG=1, no Redis): JSON 404s for unknown API routes, plain log lines
when output is not a terminal, no kombu warning per request, TensorFlow's retracing warnings silenced."""

import os

from tradingdash.tests.fresh_process import assert_script_passes

SCRIPT = """
import logging
import django
django.setup()
from django.test import Client
client = Client()
response = client.get("/api/nope/nothing")
assert response.status_code == 404, response.status_code
assert response["Content-Type"] == "application/json", response["Content-Type"]
assert response.json()["error"]["code"] == "not_found", response.content
from tradingdash.celery import app
with app.connection_for_write() as connection:  # what publishing a task does, and how it is logged
    connection.as_uri()
    repr(connection)
import structlog
structlog.get_logger("tradingdash.check").warning("plain_line", symbol="TCS.NS")
assert logging.getLogger("tensorflow").getEffectiveLevel() == logging.ERROR
print("ok")
"""


def test_make_run_settings_give_json_404s_and_quiet_plain_logs():
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"REDIS_URL", "CELERY_BROKER_URL", "LOG_FORMAT", "LOG_LEVEL", "SECRET_KEY"}
    }
    env.update(
        {"DEBUG": "1", "DJANGO_SETTINGS_MODULE": "tradingdash.settings", "MARKET_DATA_PROVIDER": "synthetic"}
    )
    result = assert_script_passes(SCRIPT, env=env)
    assert "plain_line" in result.stderr  # the console format, to a pipe
    assert "\\x1b[" not in result.stderr
    assert "No hostname was supplied" not in result.stderr
