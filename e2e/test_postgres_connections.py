"""PostgreSQL drops every connection of the app (a failover, a restart, an idle-connection reaper): the next
request, task and beat tick reconnect on their own (CONN_HEALTH_CHECKS), with nothing restarted."""

from __future__ import annotations

import pytest

from e2e.client import Api
from e2e.stack import DB_NAME, Stack, wait_for

pytestmark = pytest.mark.e2e

SYMBOL = "E2EPG.NS"
# Sequential requests, enough to reach both gunicorn workers (and their persistent connections) several times.
REQUESTS = 12


def _app_backends(stack: Stack) -> list[int]:
    return [
        pid
        for (pid,) in stack.query(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [DB_NAME]
        )
    ]


def _terminate_all(stack: Stack) -> int:
    rows = stack.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        [DB_NAME],
    )
    return sum(1 for (terminated,) in rows if terminated)


def test_every_process_reconnects_after_its_connections_are_killed(healthy_stack: Stack, staff: Api):
    stack = healthy_stack
    web_log = stack.web.mark()
    stack.add_instrument(SYMBOL)
    assert staff.post(f"/api/market/sync/{SYMBOL}", {"timeframe": "1D"}).status_code == 200
    for _ in range(REQUESTS):  # persistent connections (CONN_MAX_AGE) in every web thread
        assert staff.get(f"/api/market/historical/{SYMBOL}", limit=5).status_code == 200
    stack.canary()
    before = set(_app_backends(stack))
    assert before, "web, worker and beat hold persistent connections"

    assert _terminate_all(stack) >= 1
    wait_for(lambda: not set(_app_backends(stack)) & before, timeout=10, what="the backends to be gone")

    # The web: every request succeeds, including those on threads whose connection died.
    for _ in range(REQUESTS):
        response = staff.get(f"/api/market/historical/{SYMBOL}", limit=5, timeframe="1D")
        assert response.status_code == 200, response.text
    health = staff.get("/health")
    assert health.status_code == 200 and health.json()["checks"]["database"]["status"] == "ok"
    # Writes too, and they land.
    signal = staff.post(f"/api/signals/generate/{SYMBOL}", {"timeframe": "1D"})
    assert signal.status_code == 201, signal.text
    assert stack.query("SELECT 1 FROM signals_tradingsignal WHERE id = %s", [signal.json()["id"]])

    # The worker: a task runs and stores its result; beat: keeps sending (and recording) its schedule.
    stack.canary(timeout=60)
    stack.wait_periodic_runs("e2e-heartbeat")
    assert '"status": 500' not in stack.web.log_since(web_log)
    assert stack.worker.running and stack.beat.running and stack.web.running


def test_without_health_checks_the_web_still_recovers_by_itself(healthy_stack: Stack, staff: Api):
    """The same fault with CONN_HEALTH_CHECKS off. Under WSGI this was the control experiment (each broken
    connection failed one request with a 500); the ASGI web now takes its connections from a psycopg pool, which
    replaces broken ones: at worst a request or two fail, and the web recovers with nothing restarted."""
    stack = healthy_stack
    stack.restart(stack.web, CONN_HEALTH_CHECKS="0")
    stack.add_instrument(SYMBOL)
    for _ in range(REQUESTS):
        assert staff.get(f"/api/market/historical/{SYMBOL}", limit=5).status_code == 200
    _terminate_all(stack)
    codes = [staff.get(f"/api/market/historical/{SYMBOL}", limit=5).status_code for _ in range(REQUESTS)]
    assert set(codes) <= {200, 500} and codes.count(500) <= 2 and codes[-1] == 200, codes
