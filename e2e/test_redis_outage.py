"""Redis (cache and broker) goes away while the API serves: reads keep answering from PostgreSQL, /health says
degraded, work that must be queued is refused quickly with a 503 that says why, and nothing is half-done.
When Redis is back, the API and beat pick up again without a restart.

The worker does too, unless the connection dropped while it held an unacknowledged message: then kombu 5.7.0
fails while closing the connection ("Unrecoverable error: AttributeError: 'NoneType' object has no attribute
'hostname'") and the worker exits after finishing its running tasks. Deployments run it under a supervisor
(compose: restart: unless-stopped); `stack.canary_supervised()` plays that part here, and the last test pins the
behaviour."""

from __future__ import annotations

import signal

import pytest

from e2e import candles
from e2e.client import Api
from e2e.stack import Stack, wait_for

pytestmark = pytest.mark.e2e

SYMBOL = "E2EREDIS.NS"
ENQUEUE_BUDGET = 5.0  # seconds an enqueue may take to give up when the broker is gone (connection refused)
# ... and when it is there but does not answer: three publish attempts bounded by the broker socket timeout
# (2 s), plus the request's cache calls, each bounded by the cache socket timeout (0.5 s). Unbounded, the request
# hangs until the client gives up (gunicorn's gthread workers never time it out).
FROZEN_ENQUEUE_BUDGET = 20.0


@pytest.fixture(scope="module")
def trained(stack: Stack, staff: Api) -> dict:
    """Stored candles, an active random-forest model with a prediction, and a signal for SYMBOL."""
    stack.ensure_up()
    stack.add_instrument(SYMBOL)
    assert staff.post(f"/api/market/sync/{SYMBOL}", {"timeframe": "1D"}).status_code == 200
    accepted = staff.post(f"/api/predictions/generate/{SYMBOL}", {"model": "random_forest"})
    assert accepted.status_code == 202, accepted.text
    done = staff.wait_task(accepted.json()["task_id"], timeout=180)
    signal = staff.post(f"/api/signals/generate/{SYMBOL}", {"timeframe": "1D"})
    assert signal.status_code == 201, signal.text
    return {
        "task_id": accepted.json()["task_id"],
        "prediction_id": done["result"]["prediction_id"],
        "signal_id": signal.json()["id"],
    }


def _health(api: Api) -> dict:
    response = api.get("/health")
    assert response.status_code == 200, response.text
    return response.json()


def test_reads_answer_from_the_database_and_enqueues_fail_fast_while_redis_is_down(
    healthy_stack: Stack, staff: Api, trained: dict
):
    stack = healthy_stack
    web_log = stack.web.mark()
    [(candle_count,)] = stack.query(
        "SELECT count(*) FROM market_marketdata WHERE symbol = %s AND timeframe = '1D'", [SYMBOL]
    )
    stack.redis.stop()

    health = _health(staff)
    assert health["status"] == "degraded"
    assert health["checks"]["database"]["status"] == "ok"
    assert health["checks"]["cache"]["status"] == "down" and health["checks"]["broker"]["status"] == "down"

    reads = {
        "/api/market/status": None,
        "/api/market/symbols": None,
        f"/api/market/quote/{SYMBOL}": None,
        f"/api/market/historical/{SYMBOL}": lambda body: body["count"] == min(candle_count, 500),
        f"/api/predictions/{SYMBOL}": lambda body: (
            trained["prediction_id"] in [p["id"] for p in body["results"]]
        ),
        f"/api/predictions/models/{SYMBOL}": None,
        f"/api/predictions/{SYMBOL}/accuracy": None,
        f"/api/signals/{SYMBOL}": lambda body: trained["signal_id"] in [s["id"] for s in body["results"]],
        f"/api/signals/{SYMBOL}/backtest": None,
        f"/api/tasks/{trained['task_id']}": lambda body: body["state"] == "SUCCESS",
    }
    for path, check in reads.items():
        response = staff.get(path)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:300]}"
        assert check is None or check(response.json()), f"{path}: {response.text[:300]}"

    # Work that only needs the database still happens: a prediction with the active model, a signal.
    assert staff.post(f"/api/predictions/generate/{SYMBOL}", {"model": "random_forest"}).status_code == 201
    assert staff.post(f"/api/signals/generate/{SYMBOL}", {"timeframe": "1D"}).status_code == 201

    # Work that must be queued is refused, fast, with a message that says why; no task record is left behind.
    refused = {
        f"/api/predictions/generate/{SYMBOL}": {"model": "svr"},  # no active SVR model: needs training
        f"/api/predictions/train/{SYMBOL}": {"algorithms": ["random_forest"]},
    }
    for path, body in refused.items():
        response = staff.post(path, body)
        assert response.status_code == 503, f"{path}: {response.status_code} {response.text[:300]}"
        assert response.json()["error"]["code"] == "queue_unavailable"
        assert "queue is unavailable" in response.json()["error"]["message"]
        assert response.headers["Retry-After"] == "30"
        assert staff.last_elapsed < ENQUEUE_BUDGET, f"{path} took {staff.last_elapsed:.1f}s to give up"
    [(records,)] = stack.query(
        "SELECT count(*) FROM predictions_taskrecord WHERE key LIKE %s", [f"%{SYMBOL}%"]
    )
    assert records == 1  # the training of the fixture, and none of the refused ones
    assert '"status": 500' not in stack.web.log_since(web_log)

    # Redis comes back (empty: it keeps no data on disk): the worker reconnects, the API enqueues again.
    stack.start_redis()
    stack.canary_supervised()  # the worker may have exited (see the module docstring)
    stack.wait_periodic_runs("e2e-heartbeat")  # beat sends again, the worker runs what it sends
    wait_for(lambda: _health(staff)["status"] == "ok", timeout=30, what="/health to be ok again")
    retried = staff.post(f"/api/predictions/generate/{SYMBOL}", {"model": "svr"})
    assert retried.status_code == 202, retried.text
    assert staff.wait_task(retried.json()["task_id"], timeout=180)["result"]["prediction_id"]


def test_a_frozen_redis_costs_seconds_not_a_hung_request(healthy_stack: Stack, staff: Api, trained: dict):
    """A Redis that accepts connections but never answers (SIGSTOP: like a failover or a firewall dropping
    packets) must not hang requests: reads answer from the database, enqueues give up with a 503."""
    stack = healthy_stack
    records = "SELECT count(*) FROM predictions_taskrecord"
    [(records_before,)] = stack.query(records)
    stack.redis.signal_group(signal.SIGSTOP)
    try:
        assert _health(staff)["status"] == "degraded"
        for path in (
            f"/api/market/historical/{SYMBOL}",
            f"/api/predictions/{SYMBOL}",
            f"/api/signals/{SYMBOL}",
        ):
            response = staff.get(path)
            assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:300]}"
        response = staff.post(f"/api/predictions/train/{SYMBOL}", {"algorithms": ["svr"]})
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "queue_unavailable"
        assert staff.last_elapsed < FROZEN_ENQUEUE_BUDGET, f"gave up after {staff.last_elapsed:.1f}s"
        # No task record is left, so a retry is not told "already running" about work that was never queued.
        assert stack.query(records) == [(records_before,)]
    finally:
        stack.redis.signal_group(signal.SIGCONT)
    stack.canary_supervised()


def test_a_task_running_when_redis_dies_completes_and_its_result_is_kept(healthy_stack: Stack):
    """The result backend is PostgreSQL: a task in flight when the broker goes away still finishes, stores its
    work and its result; once Redis is back (and the worker, if it exited), the queue runs again."""
    stack = healthy_stack
    symbol = "E2EBLIP.NS"
    stack.add_instrument(symbol)
    worker_log = stack.worker.mark()
    with candles.writes_blocked(stack):
        task_id = stack.send("market.sync_symbol", args=[symbol, "1D"])
        candles.wait_blocked_insert(stack)
        stack.redis.stop()
        # Still in flight when the worker notices: the case that matters.
        wait_for(
            lambda: "Connection to broker lost" in stack.worker.log_since(worker_log),
            timeout=30,
            what="the worker to notice the broker is gone",
        )
    row = stack.wait_task(task_id, timeout=60)
    stored = candles.stored(stack, symbol, "1D")
    assert len(stored) == row["result"]["inserted"] > 1000
    assert len({r[0] for r in stored}) == len(stored)

    stack.start_redis()
    if stack.canary_supervised():
        pytest.xfail(
            "nothing was lost, but the worker exited when Redis went away and needed its supervisor: kombu 5.7.0"
            " 'Unrecoverable error: AttributeError' on a lost connection with an unacknowledged message"
        )
