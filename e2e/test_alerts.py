"""Alerts with real processes: a quote refresh in the Celery worker fires a price alert once, and the firing
reaches its owner's live stream (through the Redis channel layer and gunicorn's uvicorn worker) and a webhook
receiver in this process (signed; a first 500 retried by the worker after ALERT_DELIVERY_RETRY_BACKOFF)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from alerts.tests.receiver import Receiver
from e2e.stack import Stack, wait_for
from e2e.test_stream import drain, next_of, stream, user

pytestmark = pytest.mark.e2e

ALERT_SYMBOL = "E2EALERT.NS"
SECRET = "e2e-webhook-secret-0123456789"  # noqa: S105 (a test receiver's key)


def evaluations(stack: Stack) -> int:
    """How many price evaluations of alerts the worker has finished."""
    [(count,)] = stack.query(
        "SELECT count(*) FROM django_celery_results_taskresult"
        " WHERE task_name = 'alerts.evaluate_quote' AND status = 'SUCCESS'"
    )
    return count


def refresh_and_wait_evaluation(stack: Stack) -> None:
    """A quote refresh in the worker, and the alert evaluation it enqueued, both finished."""
    before = evaluations(stack)
    stack.wait_task(stack.send("stream.refresh_quotes", kwargs={"only_when_open": False}), timeout=60)
    wait_for(
        lambda: evaluations(stack) > before, timeout=30, what="the alert evaluation of the refreshed quote"
    )


def test_an_alert_fires_once_and_reaches_the_stream_and_a_signed_webhook_retried_after_a_500(stack: Stack):
    stack.add_instrument(ALERT_SYMBOL)
    owner, other = user(stack, "e2e-alerted"), user(stack, "e2e-bystander")
    with Receiver() as receiver, stream(stack, owner) as mine, stream(stack, other) as theirs:
        receiver.statuses = [500]  # then 200
        channel = owner.post(
            "/api/notifications/channels", {"kind": "webhook", "url": receiver.url, "secret": SECRET}
        )
        assert channel.status_code == 201, channel.text
        # Synthetic prices are 100 and up: the first quote is beyond 1.0. Alerts go to their owner whatever the
        # stream subscribed to; the quote subscription puts the (inactive) symbol in the refresher's live set
        # (only quote subscriptions do: nobody else would receive a quote refreshed for candles or signals).
        created = owner.post(
            "/api/alerts",
            {
                "symbol": ALERT_SYMBOL,
                "kind": "price_above",
                "threshold": 1.0,
                "channels": ["stream", "webhook"],
            },
        )
        assert created.status_code == 201, created.text
        alert_id = created.json()["id"]
        mine.send(json.dumps({"type": "subscribe", "symbols": [ALERT_SYMBOL], "topics": ["quote"]}))
        assert next_of(mine, "subscribed")["symbols"] == [ALERT_SYMBOL]

        refresh_and_wait_evaluation(stack)
        alert = next_of(mine, "alert", timeout=30)
        assert alert["alert_id"] == alert_id and alert["symbol"] == ALERT_SYMBOL
        assert alert["kind"] == "price_above" and alert["value"] > 1.0 and alert["threshold"] == 1.0
        assert alert["time"].endswith("+05:30")

        def deliveries() -> dict | None:
            events = owner.get("/api/alerts/events").json()["results"]
            assert len(events) == 1, events
            states = {d["channel"]: d for d in events[0]["deliveries"]}
            return states if all(d["state"] != "pending" for d in states.values()) else None

        states = wait_for(deliveries, timeout=30, what="both deliveries to finish")
        assert (states["stream"]["state"], states["stream"]["attempts"]) == ("delivered", 1)
        assert (states["webhook"]["state"], states["webhook"]["attempts"]) == ("delivered", 2), states
        assert "HTTP 500" in states["webhook"]["last_error"]

        # The receiver answered 500 then 200 to the same signed event.
        assert [r["status"] for r in receiver.requests] == [500, 200]
        for request in receiver.requests:
            expected = "sha256=" + hmac.new(SECRET.encode(), request["body"], hashlib.sha256).hexdigest()
            assert request["headers"]["X-Tradingdash-Signature"] == expected
            assert request["headers"]["X-Tradingdash-Event-Id"] == str(alert["id"])
            assert request["path"] == "/hook"
        assert receiver.requests[0]["body"] == receiver.requests[1]["body"]
        assert json.loads(receiver.requests[1]["body"])["id"] == alert["id"]

        # Still above the threshold: the next refresh evaluates the alert again and it stays quiet until the
        # price goes back across (once per crossing).
        refresh_and_wait_evaluation(stack)
        time.sleep(2)  # a second firing would be delivered within this (the first took well under it)
        assert [m for m in drain(mine, 1.0) if m["type"] == "alert"] == []
        assert len(owner.get("/api/alerts/events").json()["results"]) == 1
        assert len(receiver.requests) == 2
        # The other user's stream never saw the owner's alert.
        assert [m for m in drain(theirs, 0.5) if m["type"] == "alert"] == []
