"""The live stream when what it stands on fails: PostgreSQL, the Redis channel layer, the server's socket."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from asgiref.sync import sync_to_async
from uvicorn.protocols.utils import ClientDisconnected

from market.tests.factories import InstrumentFactory
from stream.tests.conftest import Client
from tradingdash import events

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def instruments(db):
    return [InstrumentFactory(symbol=s) for s in ("RELIANCE.NS", "TCS.NS")]


def announce_quote(symbol: str):
    quote = {"price": 101.5, "change": 1.5, "change_percent": 1.5, "volume": 1200, "stale": False}
    return sync_to_async(events.announce)(events.QuoteRefreshed(symbol=symbol, quote=quote))


def test_a_client_gone_while_a_message_is_sent_to_it_leaves_nothing_running(run, user, instruments, settings):
    """uvicorn raises ClientDisconnected from `send` once the client is gone: raised out of the consumer, it ended
    the application without its disconnect handler, so the heartbeat task ran on for the token's lifetime, sending
    into the dead socket and keeping its symbols in the live set."""
    settings.STREAM_HEARTBEAT_SECONDS = 0.05
    gone, attempts_after_gone = asyncio.Event(), []

    async def body():
        client = Client()
        application = client.communicator.application

        async def server(scope, receive, send):
            async def send_until_gone(message):
                if gone.is_set():
                    attempts_after_gone.append(message["type"])
                    raise ClientDisconnected()
                await send(message)

            await application(scope, receive, send_until_gone)

        client.communicator.application = server
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["quote"]})
        await client.receive_type("subscribed")
        gone.set()
        await announce_quote("TCS.NS")
        await asyncio.sleep(0.1)
        with contextlib.suppress(ClientDisconnected):  # raised out of the application: uvicorn swallows it
            # As uvicorn does once the connection is lost.
            await client.communicator.send_input({"type": "websocket.disconnect", "code": 1006})
            await client.communicator.wait(timeout=1)
        attempts_after_gone.clear()
        await asyncio.sleep(0.3)
        assert attempts_after_gone == []

    run(body)
