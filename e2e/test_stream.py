"""The live stream with real processes: gunicorn's uvicorn workers, a Celery worker, the Redis channel layer and a
real WebSocket client (websockets)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from e2e.client import Api
from e2e.stack import Stack

pytestmark = pytest.mark.e2e

LIVE_SYMBOL = "E2ELIVE.NS"
TASK_SYMBOL = "E2ETASK.NS"


@contextmanager
def stream(stack: Stack, api: Api | None = None) -> Iterator[ClientConnection]:
    """An open stream, authenticated with the API client's access token when one is given."""
    with connect(stack.ws_url, open_timeout=10, close_timeout=2) as ws:
        if api is not None:
            token = api.session.headers["Authorization"].removeprefix("Bearer ")
            ws.send(json.dumps({"type": "auth", "token": token}))
            assert next_of(ws, "authenticated")["user_id"]
        yield ws


def next_of(ws: ClientConnection, kind: str, *, timeout: float = 10) -> dict:
    """The next message of `kind` within `timeout` seconds (others skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no {kind} message within {timeout}s")
        message = json.loads(ws.recv(timeout=remaining))
        if message["type"] == kind:
            return message


def drain(ws: ClientConnection, seconds: float) -> list[dict]:
    """Everything received in the next `seconds`."""
    received, deadline = [], time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            received.append(json.loads(ws.recv(timeout=remaining)))
        except TimeoutError:
            break
    return received


def user(stack: Stack, name: str) -> Api:
    api = Api(stack.base_url)
    api.register_and_login(name)
    return api


def test_bad_token_closes_with_4401(stack: Stack):
    with stream(stack) as ws:
        ws.send(json.dumps({"type": "auth", "token": "not-a-token"}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 4401


def test_messages_are_sent_uncompressed(stack: Stack):
    """The client offers per-message deflate (websockets does by default); the server declines it."""
    with stream(stack) as ws:
        assert "permessage-deflate" in ws.request.headers["Sec-WebSocket-Extensions"]
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None


def test_subscribe_heartbeat_and_a_worker_quote_refresh_reaches_the_client_within_2s(stack: Stack):
    stack.add_instrument(LIVE_SYMBOL)
    api = user(stack, "e2e-live")
    with stream(stack, api) as ws:
        ws.send(json.dumps({"type": "subscribe", "symbols": ["e2elive"], "topics": ["quote"]}))
        assert next_of(ws, "subscribed")["symbols"] == [LIVE_SYMBOL]
        heartbeat = next_of(ws, "heartbeat", timeout=5)
        assert heartbeat["time"].endswith("+05:30")

        # The worker refreshes the live-subscribed symbol (inactive, so only the live set names it) and the
        # quote crosses Redis to this web process.
        sent = time.monotonic()
        task_id = stack.send("stream.refresh_quotes", kwargs={"only_when_open": False})
        quote = next_of(ws, "quote", timeout=30)
        latency = time.monotonic() - sent
        assert quote["symbol"] == LIVE_SYMBOL and quote["price"] > 0 and quote["stale"] is False
        assert LIVE_SYMBOL in stack.wait_task(task_id)["result"]["refreshed"]

        # Measured from the worker's publish: a second refresh, the worker already warm.
        sent = time.monotonic()
        stack.send("stream.refresh_quotes", kwargs={"only_when_open": False})
        next_of(ws, "quote", timeout=10)
        assert time.monotonic() - sent < 2.0, f"first {latency:.2f}s, then {time.monotonic() - sent:.2f}s"


def test_a_user_never_receives_another_users_task_messages(stack: Stack, staff: Api):
    stack.add_instrument(TASK_SYMBOL)
    assert staff.post(f"/api/market/sync/{TASK_SYMBOL}", {"timeframe": "1D"}).status_code == 200
    other = user(stack, "e2e-other")
    with stream(stack, staff) as mine, stream(stack, other) as theirs:
        accepted = staff.post(
            f"/api/predictions/train/{TASK_SYMBOL}", {"timeframe": "1D", "algorithms": ["random_forest"]}
        )
        assert accepted.status_code == 202, accepted.text
        task_id = accepted.json()["task_id"]
        states: list[str] = []
        while "SUCCESS" not in states:
            message = next_of(mine, "task", timeout=180)
            assert message["task_id"] == task_id
            states.append(message["state"])
        assert "PROGRESS" in states and states[-1] == "SUCCESS", states
        assert [m for m in drain(theirs, 1.0) if m["type"] == "task"] == []
