"""A worker dying in the middle of a sync loses nothing: the message was not acknowledged (acks_late), so it is
handed out again, and the sync, an upsert, stores every candle exactly once.

The sync is caught mid-write honestly: the test holds a SHARE lock on the candle table, so the task's INSERT
waits inside its transaction until the worker is killed."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime, timedelta

import pytest

from e2e import candles
from e2e.client import Api
from e2e.stack import VISIBILITY_TIMEOUT, Stack, wait_for

pytestmark = pytest.mark.e2e

SYNC_DAYS = 59  # 5-minute bars: the longest window Yahoo (and so the synthetic provider) serves


def _started(stack: Stack, task_id: str) -> dict:
    row = stack.wait_task(task_id, status="STARTED", timeout=60)
    assert row["result"]["pid"], row
    return row


def _assert_stored_equals_synthetic(stack: Stack, task_id: str, symbol: str) -> list[candles.Row]:
    """Every 5-minute bar of the task's window, once, with the provider's values; nothing missing at either end."""
    row = stack.task_row(task_id)
    assert row["status"] == "SUCCESS", row
    first, last = (datetime.fromisoformat(row["result"][key]) for key in ("first", "last"))
    done, started = row["date_done"], row["date_started"] or row["date_done"]
    stored = candles.stored(stack, symbol, "5m")
    assert len({r[0] for r in stored}) == len(stored)
    assert stored == candles.expected(
        stack, symbol, "5m", start=first, end=last + timedelta(microseconds=1), now=done
    )
    # The window began SYNC_DAYS before the task ran and ended with the last bar closed when it ran.
    head = candles.expected(stack, symbol, "5m", start=done - timedelta(days=SYNC_DAYS), end=first, now=done)
    assert head == [] and first >= started - timedelta(days=SYNC_DAYS)
    closed_when_started = candles.expected(
        stack, symbol, "5m", start=started - timedelta(days=3), end=started, now=started
    )
    assert not closed_when_started or closed_when_started[-1][0] <= last
    return stored


def _unacked_since(stack: Stack, task_id: str) -> float | None:
    """When the broker handed out the (still unacknowledged) message of `task_id`, as a Unix time."""
    client = stack.redis_client()
    for tag, payload in client.hgetall("unacked").items():
        message = json.loads(payload)[0]
        if message["headers"]["id"] == task_id:
            return client.zscore("unacked_index", tag)
    return None


def test_pool_process_killed_mid_sync_is_requeued_and_completes(healthy_stack: Stack):
    stack = healthy_stack
    symbol = "E2ECHILD.NS"
    stack.add_instrument(symbol)
    with candles.writes_blocked(stack):
        task_id = stack.send("market.sync_symbol", args=[symbol, "5m", SYNC_DAYS])
        first_backend = candles.wait_blocked_insert(stack)
        child = _started(stack, task_id)["result"]["pid"]
        os.kill(child, signal.SIGKILL)
        # The worker sees its pool process die and puts the message back (reject_on_worker_lost): the task
        # starts again in another process and waits on the same lock.
        candles.wait_blocked_insert(stack, besides={first_backend})
        assert _started(stack, task_id)["result"]["pid"] != child
    stack.wait_task(task_id)
    _assert_stored_equals_synthetic(stack, task_id, symbol)
    assert "WorkerLostError" in stack.worker.log()


def test_worker_killed_mid_sync_is_redelivered_after_restart(healthy_stack: Stack, staff: Api):
    stack = healthy_stack
    symbol = "E2EKILL.NS"
    stack.add_instrument(symbol)
    # Some candles are stored already: the redelivered sync must keep them, unchanged and not duplicated.
    assert staff.post(f"/api/market/sync/{symbol}", {"timeframe": "5m", "days": 10}).status_code == 200
    before = candles.stored(stack, symbol, "5m")
    assert before

    with candles.writes_blocked(stack):
        task_id = stack.send("market.sync_symbol", args=[symbol, "5m", SYNC_DAYS])
        dead_backend = candles.wait_blocked_insert(stack)
        _started(stack, task_id)
        stack.worker.kill()  # SIGKILL to the main process and its pool at once: no ack, no reject, no cleanup
        killed_log = stack.worker.log_path
    # With the lock gone, PostgreSQL rolls the dead worker's transaction back: nothing half-written.
    wait_for(lambda: candles.backend_gone(stack, dead_backend), timeout=30, what="the dead worker's backend")
    assert candles.stored(stack, symbol, "5m") == before
    assert stack.task_row(task_id)["status"] == "STARTED"

    # The message is still in Redis, unacknowledged; a worker takes it back once the visibility timeout has
    # passed (at start-up, and then periodically).
    handed_out = _unacked_since(stack, task_id)
    assert handed_out is not None, "the killed task's message must still be unacknowledged in Redis"
    wait_for(
        lambda: time.time() > handed_out + VISIBILITY_TIMEOUT + 1,
        timeout=VISIBILITY_TIMEOUT + 30,
        what="the visibility timeout to pass",
    )
    stack.start_worker()
    stack.wait_task(task_id, timeout=60)

    stored = _assert_stored_equals_synthetic(stack, task_id, symbol)
    assert set(before) <= set(stored)
    assert f"[{task_id}] received" in killed_log.read_text()
    assert f"[{task_id}] received" in stack.worker.log()
    assert _unacked_since(stack, task_id) is None
