"""What one client may send the live stream: how large a message, how many how fast."""

from __future__ import annotations

import asyncio
import json

import pytest

from stream.tests.conftest import Client
from tradingdash.workers import AsgiWorker

pytestmark = pytest.mark.django_db(transaction=True)

MAX_MESSAGE_BYTES = AsgiWorker.CONFIG_KWARGS["ws_max_size"]  # what production's server lets through
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_POLICY_VIOLATION = 1008
UNSUBSCRIBE = {"type": "unsubscribe", "symbols": ["TCS"], "topics": ["quote"]}  # cheap: answered at once


def padded(size: int) -> str:
    """A JSON message of exactly `size` bytes (UTF-8; the padding is two bytes a character)."""
    bare = json.dumps({"type": "dance", "pad": ""}, ensure_ascii=False)
    return json.dumps({"type": "dance", "pad": "é" * ((size - len(bare)) // 2)}, ensure_ascii=False)


@pytest.mark.parametrize("authenticated", [False, True], ids=["first_message", "after_auth"])
def test_a_message_over_productions_frame_limit_closes_with_1009_under_any_server(run, user, authenticated):
    """`make run`'s uvicorn takes frames of up to 16 MiB, production's workers 64 KiB: the consumer itself now
    refuses what production's server would, with the same close code."""
    too_big = padded(MAX_MESSAGE_BYTES + 2)
    assert len(too_big) < MAX_MESSAGE_BYTES < len(too_big.encode())  # bytes are counted, not characters

    async def body():
        client = Client()
        if authenticated:
            await client.login(user)
        else:
            assert await client.connect()
        await client.send(too_big)
        assert await client.closed_with() == CLOSE_MESSAGE_TOO_BIG
        await client.close()

    run(body)


def test_a_message_of_productions_frame_limit_is_answered(run, user):
    largest = padded(MAX_MESSAGE_BYTES)
    assert len(largest.encode()) == MAX_MESSAGE_BYTES

    async def body():
        client = Client()
        await client.login(user)
        await client.send(largest)
        assert (await client.receive_type("error"))["code"] == "unknown_type"
        await client.close()

    run(body)


def test_messages_beyond_the_burst_are_refused_and_a_client_that_keeps_on_is_closed(run, user, settings):
    settings.STREAM_MESSAGE_BURST = 3
    settings.STREAM_MESSAGE_RATE = 0.01  # nothing comes back within the test

    async def body():
        client = Client()
        await client.login(user)  # the auth message took one
        for _ in range(2):
            await client.send(UNSUBSCRIBE)
            await client.receive_type("unsubscribed")
        for _ in range(3):  # as many refusals in a row as the burst: answered
            await client.send(UNSUBSCRIBE)
            error = await client.receive_type("error")
            assert error["code"] == "rate_limited" and error["message"]
        await client.send(UNSUBSCRIBE)
        assert await client.closed_with() == CLOSE_POLICY_VIOLATION
        await client.close()

    run(body)


def test_the_allowance_comes_back_at_the_rate(run, user, settings):
    settings.STREAM_MESSAGE_BURST = 2
    settings.STREAM_MESSAGE_RATE = 10

    async def body():
        client = Client()
        await client.login(user)
        await client.send(UNSUBSCRIBE)
        await client.receive_type("unsubscribed")
        await client.send(UNSUBSCRIBE)
        assert (await client.receive_type("error"))["code"] == "rate_limited"
        await asyncio.sleep(0.25)  # two messages' worth at 10 a second
        for _ in range(2):
            await client.send(UNSUBSCRIBE)
            await client.receive_type("unsubscribed")
        await client.close()

    run(body)
