"""The market data provider fails (HTTP 429, timeouts) under a scheduled sync: the task retries with backoff, a
bounded number of times, the stored candles are never touched by a failed attempt, and the API serves them
meanwhile marked stale.

The worker and gunicorn run e2e.faults.FaultyProvider (selected like any provider, through
MARKET_DATA_PROVIDER); the test scripts its failures in a file both processes read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from e2e.client import Api
from e2e.faults import FaultScript
from e2e.stack import Stack, wait_for

pytestmark = pytest.mark.e2e

SYMBOL = "E2EFAULT.NS"
MAX_RETRIES = 5  # market.sync_symbol's
FAULTY = {
    "MARKET_DATA_PROVIDER": "e2e.faults:build_provider",
    # Seconds instead of the production 30 s doubling to 10 minutes, so the test sees every retry.
    "MARKET_SYNC_RETRY_BACKOFF": "1",
    "MARKET_SYNC_RETRY_BACKOFF_MAX": "2",
}


@pytest.fixture
def faulty(healthy_stack: Stack) -> Stack:
    """Worker and web on the scripted provider; healthy_stack puts the usual ones back afterwards."""
    healthy_stack.restart(healthy_stack.worker, **FAULTY)
    healthy_stack.restart(healthy_stack.web, **FAULTY)
    return healthy_stack


def _rows(stack: Stack) -> list[tuple]:
    """The stored daily candles with who wrote them and when (a failed sync must change none of it)."""
    return stack.query(
        "SELECT timestamp, open_price, high_price, low_price, close_price, volume, source, updated_at"
        " FROM market_marketdata WHERE symbol = %s AND timeframe = '1D' ORDER BY timestamp",
        [SYMBOL],
    )


def _candles(rows: list[tuple]) -> list[tuple]:
    return [row[:6] for row in rows]


def _from_api(payload: dict) -> list[tuple]:
    return [
        (datetime.fromisoformat(c["timestamp"]), c["open"], c["high"], c["low"], c["close"], c["volume"])
        for c in payload["candles"]
    ]


def _scheduled_run(stack: Stack, entry: str, *, status: str, timeout: float = 90) -> dict:
    """Let beat run `market.sync_symbol` once (a one-off interval entry) and wait for its final state."""
    stack.schedule(
        entry, "market.sync_symbol", every=1, args=[SYMBOL, "1D"], one_off=True, expire_seconds=300
    )

    def finished():
        rows = stack.query(
            "SELECT task_id FROM django_celery_results_taskresult WHERE periodic_task_name = %s", [entry]
        )
        row = stack.task_row(rows[0][0]) if rows else None
        return {**row, "task_id": rows[0][0]} if row and row["status"] in {"SUCCESS", "FAILURE"} else None

    row = wait_for(finished, timeout=timeout, interval=0.25, what=f"beat's {entry} run to finish")
    assert row["status"] == status, row
    # One result: the retries were the same task (same id) coming back, not new ones.
    assert stack.query(
        "SELECT count(*) FROM django_celery_results_taskresult WHERE periodic_task_name = %s", [entry]
    ) == [(1,)]
    return row


def _retries_logged(stack: Stack, task_id: str) -> list[str]:
    return [
        json.loads(line)["event"]
        for line in stack.worker.log().splitlines()
        if task_id in line and "Retry in" in line
    ]


def test_scheduled_sync_retries_through_provider_failures_while_reads_serve_stale(faulty: Stack, staff: Api):
    stack, script = faulty, FaultScript(faulty.faults_file)
    stack.add_instrument(SYMBOL)
    synced = staff.post(f"/api/market/sync/{SYMBOL}", {"timeframe": "1D", "days": 30})
    assert synced.status_code == 200 and synced.json()["source"] == "e2e-synthetic", synced.text
    before = _rows(stack)
    assert len(before) >= 15

    # The provider is down: reads that would need it answer from the database, marked stale.
    script.set(SYMBOL, down=True)
    # Before the stored range: serving it needs the provider.
    earlier = (datetime.now(UTC) - timedelta(days=90)).date().isoformat()
    historical = staff.get(f"/api/market/historical/{SYMBOL}", timeframe="1D", start=earlier)
    assert historical.status_code == 200, historical.text
    assert historical.json()["stale"] is True
    assert _from_api(historical.json()) == _candles(before)
    quote = staff.get(f"/api/market/quote/{SYMBOL}")
    assert quote.status_code == 200, quote.text
    assert quote.json()["stale"] is True and quote.json()["price"] == before[-1][4]
    assert [a["outcome"] for a in script.attempts(SYMBOL)][-2:] == ["rate_limited", "timeout"]

    # Still down: beat's sync retries with backoff until its retries run out, and then fails, loudly.
    seen = len(script.attempts(SYMBOL))
    failed = _scheduled_run(stack, "e2e-sync-provider-down", status="FAILURE", timeout=120)
    assert len(_retries_logged(stack, failed["task_id"])) == MAX_RETRIES
    assert len(script.attempts(SYMBOL)[seen:]) == 1 + MAX_RETRIES
    assert failed["result"]["exc_type"] in {"RateLimited", "ProviderUnavailable"}
    assert _rows(stack) == before  # nothing written, not even updated_at

    # A 429, a timeout and a 429 again, then the provider answers: the retries carry the same task through.
    script.set(SYMBOL, fail_next=3)
    seen = len(script.attempts(SYMBOL))
    recovered = _scheduled_run(stack, "e2e-sync-provider-flaky", status="SUCCESS")
    outcomes = [a["outcome"] for a in script.attempts(SYMBOL)[seen:]]
    assert outcomes == ["rate_limited", "timeout", "rate_limited", "ok"]
    assert [e.split(":")[0] for e in _retries_logged(stack, recovered["task_id"])] == [
        f"Task market.sync_symbol[{recovered['task_id']}] retry"
    ] * 3
    # The overlap was fetched again: same values, no duplicates (and a bar that closed meanwhile, if any).
    after = _rows(stack)
    assert _candles(after)[: len(before)] == _candles(before)
    assert len({row[0] for row in after}) == len(after)

    # The provider is back: the same read fetches what it lacked and is no longer stale.
    historical = staff.get(f"/api/market/historical/{SYMBOL}", timeframe="1D", start=earlier)
    assert historical.status_code == 200 and historical.json()["stale"] is False
    assert len(historical.json()["candles"]) > len(before)
