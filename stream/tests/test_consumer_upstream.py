"""The live stream when what it stands on fails: PostgreSQL, the Redis channel layer, the server's socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
from unittest import mock

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import OperationalError
from django.db.backends.utils import CursorWrapper
from structlog.testing import capture_logs
from uvicorn.protocols.utils import ClientDisconnected

from market.tests.factories import InstrumentFactory
from stream.tests.conftest import Client, access_token
from tradingdash import events
from tradingdash.cache import local_caches_clear

pytestmark = pytest.mark.django_db(transaction=True)

CLOSE_TRY_AGAIN_LATER = 1013


@pytest.fixture
def instruments(db):
    return [InstrumentFactory(symbol=s) for s in ("RELIANCE.NS", "TCS.NS")]


@contextlib.contextmanager
def database_down():
    """Every query fails as it does while PostgreSQL is unreachable."""

    def refuse(*args, **kwargs):
        raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')

    with mock.patch.object(CursorWrapper, "execute", refuse):
        yield


def redis_down(monkeypatch, method: str, *, after: int = 0) -> None:
    """The channel layer's `method` fails as when Redis is unreachable, after `after` calls that go through."""
    layer = get_channel_layer()
    real = getattr(layer, method)
    calls = []

    async def failing(*args, **kwargs):
        calls.append(args)
        if len(calls) > after:
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return await real(*args, **kwargs)

    monkeypatch.setattr(layer, method, failing, raising=False)


def unavailable_logs(logs: list[dict]) -> list[dict]:
    return [log for log in logs if log["event"] == "stream_upstream_unavailable"]


def announce_quote(symbol: str):
    quote = {"price": 101.5, "change": 1.5, "change_percent": 1.5, "volume": 1200, "stale": False}
    return sync_to_async(events.announce)(events.QuoteRefreshed(symbol=symbol, quote=quote))


def test_a_database_down_at_authentication_closes_with_try_again_later_not_4401(run, user):
    """Was a crash of the consumer (uvicorn: a traceback and the TCP connection dropped, 1006): 4401 would have told
    the client to throw its good token away."""
    token = access_token(user)

    async def body():
        client = Client()
        assert await client.connect()
        with database_down():
            await client.send({"type": "auth", "token": token})
            assert await client.closed_with() == CLOSE_TRY_AGAIN_LATER
        await client.close()

    with capture_logs() as logs:
        run(body)
    (log,) = unavailable_logs(logs)
    assert log["operation"] == "auth" and "exc_info" not in log


def test_a_channel_layer_down_at_authentication_closes_with_try_again_later(run, user, monkeypatch):
    redis_down(monkeypatch, "group_add")

    async def body():
        client = Client()
        assert await client.connect()
        await client.send({"type": "auth", "token": access_token(user)})
        assert await client.closed_with() == CLOSE_TRY_AGAIN_LATER
        await client.close()

    with capture_logs() as logs:
        run(body)
    assert len(unavailable_logs(logs)) == 1


def test_a_database_down_at_subscribe_is_an_unavailable_error_and_the_stream_stays_open(
    run, user, instruments
):
    async def body():
        client = Client()
        await client.login(user)
        with database_down():
            await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["quote"]})
            error = await client.receive_type("error")
        assert error["code"] == "unavailable" and error["message"]
        await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["quote"]})
        assert (await client.receive_type("subscribed"))["symbols"] == ["TCS.NS"]
        await client.close()

    with capture_logs() as logs:
        run(body)
    (log,) = unavailable_logs(logs)
    assert log["operation"] == "subscribe" and "exc_info" not in log


def test_a_subscribe_the_channel_layer_fails_half_way_subscribes_to_nothing(
    run, user, instruments, monkeypatch
):
    """The first symbol's group was joined when the second's failed: the client, told `unavailable`, must not get
    quotes of either; its retry subscribes to both."""

    async def body():
        client = Client()
        await client.login(user)
        redis_down(monkeypatch, "group_add", after=1)
        await client.send({"type": "subscribe", "symbols": ["RELIANCE", "TCS"], "topics": ["quote"]})
        assert (await client.receive_type("error"))["code"] == "unavailable"
        await announce_quote("RELIANCE.NS")
        assert await client.nothing()
        monkeypatch.undo()
        await client.send({"type": "subscribe", "symbols": ["RELIANCE", "TCS"], "topics": ["quote"]})
        await client.receive_type("subscribed")
        await announce_quote("RELIANCE.NS")
        assert (await client.receive_type("quote"))["symbol"] == "RELIANCE.NS"
        await client.close()

    run(body)


def test_an_unsubscribe_the_channel_layer_fails_still_stops_the_topic(run, user, instruments, monkeypatch):
    async def body():
        client = Client()
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["quote"]})
        await client.receive_type("subscribed")
        redis_down(monkeypatch, "group_discard")
        await client.send({"type": "unsubscribe", "symbols": ["TCS"], "topics": ["quote"]})
        assert (await client.receive_type("unsubscribed"))["symbols"] == ["TCS.NS"]
        monkeypatch.undo()
        await announce_quote("TCS.NS")
        assert await client.nothing()
        await client.close()

    run(body)


def test_a_channel_layer_down_when_the_client_leaves_is_logged_once_not_a_crash(
    run, user, instruments, monkeypatch
):
    async def body():
        client = Client()
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["RELIANCE", "TCS"]})
        await client.receive_type("subscribed")
        redis_down(monkeypatch, "group_discard")
        await client.close()  # raises what the application raised

    with capture_logs() as logs:
        run(body)
    (log,) = unavailable_logs(logs)
    assert log["operation"] == "leave" and log["failed"] == 9  # the user's group, 2 symbols x 4 topics


def test_a_database_down_at_the_user_recheck_closes_with_try_again_later(run, user, settings):
    """The stream cannot tell whether the user was deactivated: it closes (as the API answers 503) rather than
    go on unchecked; the heartbeat task used to log a traceback every period and skip the heartbeat."""
    settings.STREAM_HEARTBEAT_SECONDS = 0.1
    settings.AUTH_USER_CACHE_SECONDS = 0

    async def body():
        client = Client()
        await client.login(user)
        with database_down():
            assert await client.closed_with(timeout=2) == CLOSE_TRY_AGAIN_LATER
        await client.close()

    with capture_logs() as logs:
        run(body)
    (log,) = unavailable_logs(logs)
    assert log["operation"] == "user_check" and "exc_info" not in log
    assert not [log for log in logs if log["event"] == "stream_heartbeat_failed"]


def test_a_database_down_at_the_stale_check_is_logged_once_and_heartbeats_go_on(
    run, user, instruments, settings
):
    settings.STREAM_HEARTBEAT_SECONDS = 0.05
    settings.QUOTE_REFRESH_SECONDS = (
        0.01  # every subscribed symbol is late at once: the stale check asks the calendar
    )

    async def body():
        client = Client()
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["quote"]})
        await client.receive_type("subscribed")
        await sync_to_async(cache.clear)()
        local_caches_clear()  # the exchange's holidays, cached at authentication, lapsed: read again
        with database_down():
            for _ in range(4):
                await client.receive_type("heartbeat", timeout=1)
        await client.close()

    with capture_logs() as logs:
        run(body)
    (log,) = unavailable_logs(logs)
    assert log["operation"] == "stale_check"
    assert not [log for log in logs if log["event"] == "stream_heartbeat_failed"]


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


def _client_reading_when(readable: asyncio.Event) -> Client:
    """A client whose socket takes what the server sends only while `readable` is set: the server's send waits,
    as it does on a socket whose client stopped reading."""
    client = Client()
    application = client.communicator.application

    async def server(scope, receive, send):
        async def send_when_read(message):
            await readable.wait()
            await send(message)

        await application(scope, receive, send_when_read)

    client.communicator.application = server
    return client


@pytest.mark.parametrize("in_flight", [True, False], ids=["group_message_in_flight", "idle"])
def test_a_client_that_stops_reading_is_dropped_from_its_groups_and_closed(
    run, user, instruments, settings, in_flight
):
    """The server's send blocks while the socket's write buffer is full (uvicorn awaits the transport's resume, which
    never comes from a client that reads nothing). The consumer stayed blocked and stayed in its groups: the
    channel layer's queue for the socket (unbounded, per process) grew with every message published, and uvicorn's
    keepalive close never freed it (measured: 24,921 queued messages held after 30,000 publishes, for good)."""
    settings.STREAM_HEARTBEAT_SECONDS = 0.05
    settings.STREAM_SEND_TIMEOUT_SECONDS = 0.2
    readable = asyncio.Event()

    async def body():
        client = _client_reading_when(readable)
        readable.set()
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["quote"]})
        await client.receive_type("subscribed")
        while not await client.nothing(timeout=0.01):  # the heartbeats sent so far
            await client.receive()
        readable.clear()
        if in_flight:
            await announce_quote("TCS.NS")
        await asyncio.sleep(0.5)
        for _ in range(3):  # published once the stream gave up on the client: not queued for it
            await announce_quote("TCS.NS")
        await asyncio.sleep(0.1)
        readable.set()  # the client reads again: what was in flight, then the close
        if in_flight:
            assert (await client.receive())["type"] == "quote"
        assert await client.closed_with() == 1008
        await client.close()

    with capture_logs() as logs:
        run(body)
    assert [log["event"] for log in logs if log["event"] == "stream_client_not_reading"] == [
        "stream_client_not_reading"
    ]


def test_a_client_leaving_with_messages_queued_for_it_leaves_no_subscription_behind(run, user, instruments):
    """Channels ends a consumer without cancelling a channel receive that already has a message, and the pub/sub
    layer forgets a channel (its queue, its Redis subscription) only when such a receive is cancelled: a socket that
    closed with messages queued for it (a burst of quotes, a slow reader) left both in the process for good."""
    readable = asyncio.Event()
    redis_client = redis.Redis.from_url(django_settings.REDIS_URL)
    pattern = f"{django_settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}specific.*"

    def subscribed() -> set[bytes]:
        return set(redis_client.pubsub_channels(pattern))

    async def body():
        before = await sync_to_async(subscribed)()
        client = _client_reading_when(readable)
        readable.set()
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["quote"]})
        await client.receive_type("subscribed")
        readable.clear()
        for _ in range(5):
            await announce_quote("TCS.NS")
        await asyncio.sleep(0.2)
        await client.communicator.send_input({"type": "websocket.disconnect", "code": 1006})
        await asyncio.sleep(0.05)
        readable.set()
        await client.communicator.wait(timeout=2)
        await asyncio.sleep(0.2)
        assert await sync_to_async(subscribed)() == before

    run(body)


@pytest.fixture
def redis_refusing(monkeypatch):
    """Every new connection to Redis is refused at the socket, as while Redis is down."""
    from redis.asyncio.connection import Connection

    async def refuse(self):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(Connection, "_connect", refuse)


def test_a_channel_layer_down_at_the_handshake_is_a_json_503_not_a_server_error(run, redis_refusing):
    """The consumer's channel is created on the channel layer before the handshake: with Redis down that raised out
    of the application (uvicorn: a traceback in the log and a bare 500)."""

    async def body():
        client = Client()
        client.communicator.scope["extensions"] = {"websocket.http.response": {}}
        await client.communicator.send_input({"type": "websocket.connect"})
        start = await client.communicator.receive_output()
        sent = await client.communicator.receive_output()
        assert (start["type"], start["status"]) == ("websocket.http.response.start", 503)
        assert dict(start["headers"])[b"retry-after"].isdigit()
        assert json.loads(sent["body"])["error"]["code"] == "unavailable"
        await client.communicator.wait()

    with capture_logs() as logs:
        run(body)
    (log,) = unavailable_logs(logs)
    assert log["operation"] == "connect" and log["log_level"] == "warning" and "exc_info" not in log
    assert "ConnectionError" in log["error"]


def test_a_channel_layer_down_at_the_handshake_closes_with_try_again_later_where_no_http_answer_can_go(
    run, redis_refusing
):
    """A server without the WebSocket HTTP response extension can only refuse the handshake with a 403, which
    tells the client nothing: the socket is accepted and closed at once with 1013, as the consumer closes for an
    outage later on."""

    async def body():
        client = Client()
        await client.communicator.send_input({"type": "websocket.connect"})
        assert (await client.communicator.receive_output())["type"] == "websocket.accept"
        assert await client.closed_with() == CLOSE_TRY_AGAIN_LATER
        await client.communicator.wait()

    with capture_logs() as logs:
        run(body)
    assert [log["operation"] for log in unavailable_logs(logs)] == ["connect"]


def test_handshakes_refused_while_the_channel_layer_is_down_leave_nothing_in_the_process(run, redis_refusing):
    """channels_redis kept the queue of each channel it failed to create, for good: clients retrying through an
    outage grew the web process without bound."""

    async def body():
        for _ in range(3):
            client = Client()
            await client.communicator.send_input({"type": "websocket.connect"})
            await client.communicator.receive_output()
            await client.communicator.wait()
        assert get_channel_layer()._get_layer().channels == {}

    run(body)
