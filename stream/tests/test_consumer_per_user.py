"""How many streams one user may hold open, across every web process: STREAM_MAX_PER_USER slots in Redis, each
held by a socket's lease that its heartbeat renews."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import redis
import time_machine
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.utils import timezone
from structlog.testing import capture_logs

from accounts.tests.factories import UserFactory
from stream.publish import publish_to_user
from stream.tests.conftest import Client, access_token

pytestmark = pytest.mark.django_db(transaction=True)

CLOSE_TOO_MANY_STREAMS = 4429
UNSUBSCRIBE = {"type": "unsubscribe", "symbols": ["TCS"], "topics": ["quote"]}  # cheap: answered at once


async def refused(client: Client) -> tuple[int, str]:
    """The close code and reason of an `auth` the server answered with a close."""
    output = await client.communicator.receive_output(timeout=2)
    assert output["type"] == "websocket.close", output
    return output["code"], output.get("reason")


async def auth(client: Client, user) -> None:
    assert await client.connect()
    await client.send({"type": "auth", "token": access_token(user)})


async def still_open(client: Client) -> bool:
    await client.send(UNSUBSCRIBE)
    return (await client.receive_type("unsubscribed"))["type"] == "unsubscribed"


def held(user) -> int:
    """The slots Redis holds for `user`, lapsed ones included (nothing removed them)."""
    from stream.slots import slots_key

    return redis.Redis.from_url(django_settings.REDIS_URL).zcard(slots_key(user.pk))


def test_a_stream_beyond_the_users_limit_is_refused_with_4429_and_the_open_ones_go_on(run, user, settings):
    """Was: any number of streams per user (a leaked token could open thousands, each fanned out to)."""
    settings.STREAM_MAX_PER_USER = 2

    async def body():
        first, second, third = Client(), Client(), Client()
        await first.login(user)
        await second.login(user)
        await auth(third, user)
        assert await refused(third) == (CLOSE_TOO_MANY_STREAMS, "Too many streams: at most 2 per user.")
        assert await still_open(first) and await still_open(second)
        for client in (first, second, third):
            await client.close()

    run(body)


def test_another_user_is_unaffected_by_a_user_at_the_limit(run, user, settings):
    settings.STREAM_MAX_PER_USER = 1
    other = UserFactory()

    async def body():
        mine, theirs = Client(), Client()
        await mine.login(user)
        assert (await theirs.login(other))["user_id"] == other.pk
        await mine.close()
        await theirs.close()

    run(body)


def test_closing_a_stream_frees_its_slot_for_a_new_one(run, user, settings):
    settings.STREAM_MAX_PER_USER = 1

    async def body():
        first, refused_meanwhile, second = Client(), Client(), Client()
        await first.login(user)
        await auth(refused_meanwhile, user)
        assert (await refused(refused_meanwhile))[0] == CLOSE_TOO_MANY_STREAMS
        await refused_meanwhile.close()
        await first.close()
        assert (await second.login(user))["user_id"] == user.pk
        await second.close()

    run(body)
    assert held(user) == 0


def test_a_slot_held_by_a_stream_that_vanished_lapses_after_the_lease_while_open_streams_keep_theirs(
    run, user, settings
):
    """A process killed with its sockets open releases nothing: its slots lapse after 3 heartbeats, while the
    heartbeats of the streams still open renew theirs."""
    from stream.slots import slot_claim

    settings.STREAM_MAX_PER_USER = 2
    settings.STREAM_HEARTBEAT_SECONDS = 0.2
    settings.STREAM_SEND_TIMEOUT_SECONDS = 0.2  # a lease of 0.8 s

    async def body():
        alive, before, after, beyond = Client(), Client(), Client(), Client()
        await alive.login(user)
        assert await slot_claim(user_id=user.pk, channel="specific.a-process-that-died")
        await auth(before, user)
        assert (await refused(before))[0] == CLOSE_TOO_MANY_STREAMS
        await asyncio.sleep(1)  # past the dead slot's lease, and the live stream's first
        assert (await after.login(user))["user_id"] == user.pk
        await auth(beyond, user)  # the live stream's slot was renewed: the limit still holds
        assert (await refused(beyond))[0] == CLOSE_TOO_MANY_STREAMS
        for client in (alive, before, after, beyond):
            await client.close()

    run(body)


def test_a_stream_closed_by_the_server_releases_its_slot(run, user, settings):
    """The token expired (4401): the slot is free at once, before the client's disconnect, not a lease later."""
    settings.STREAM_HEARTBEAT_SECONDS = 600

    async def body():
        client = Client()
        await client.login(user)
        assert await sync_to_async(held)(user) == 1
        traveller.shift(timedelta(minutes=31))  # past the access token's lifetime
        await sync_to_async(publish_to_user)(user.pk, {"type": "alert", "alert_id": 1, "symbol": "TCS.NS"})
        assert await client.closed_with() == 4401
        assert await sync_to_async(held)(user) == 0
        await client.close()

    with time_machine.travel(timezone.now(), tick=True) as traveller:
        run(body)


def test_a_stream_closed_for_its_deactivated_user_releases_its_slot(run, user, settings):
    settings.STREAM_HEARTBEAT_SECONDS = 0.1
    settings.AUTH_USER_CACHE_SECONDS = 0  # re-checked at every heartbeat

    async def body():
        client = Client()
        await client.login(user)
        await sync_to_async(type(user).objects.filter(pk=user.pk).update)(is_active=False)
        while True:
            output = await client.communicator.receive_output(timeout=2)
            if output["type"] == "websocket.close":
                break
        assert output["code"] == 4401
        assert await sync_to_async(held)(user) == 0  # before the client's disconnect
        await client.close()

    run(body)


def test_sockets_of_several_processes_racing_for_the_last_slot_get_it_once():
    """Each racer on its own event loop in its own thread, hence its own Redis connection, as processes are."""
    from stream.slots import slot_claim

    racers = 12
    start = threading.Barrier(racers)

    def race(n: int) -> bool:
        async def claim() -> bool:
            await slot_claim(
                user_id=987654, channel="specific.warm-up", limit=0
            )  # connected before the start
            start.wait()
            return await slot_claim(user_id=987654, channel=f"specific.racer-{n}", limit=1)

        return asyncio.run(claim())

    with ThreadPoolExecutor(racers) as pool:
        granted = list(pool.map(race, range(racers)))
    assert granted.count(True) == 1


def test_a_stream_let_through_while_redis_was_down_is_closed_once_it_finds_no_free_slot(run, user, settings):
    """A leaked token that opened many streams during an outage kept them all, uncounted, after it: a heartbeat that
    finds the stream holding no slot, and none free, closes it as a new stream would be refused."""
    settings.STREAM_MAX_PER_USER = 1
    settings.STREAM_HEARTBEAT_SECONDS = 0.2
    working = settings.REDIS_URL

    async def body():
        during, after = Client(), Client()
        settings.REDIS_URL = "redis://127.0.0.1:1/12"  # down
        assert (await during.login(user))["user_id"] == user.pk  # let through, uncounted
        settings.REDIS_URL = working  # back
        assert (await after.login(user))["user_id"] == user.pk  # takes the one slot
        for _ in range(20):  # heartbeats, until the close
            output = await during.communicator.receive_output(timeout=2)
            if output["type"] == "websocket.close":
                break
        assert (output["code"], output.get("reason")) == (
            CLOSE_TOO_MANY_STREAMS,
            "Too many streams: at most 1 per user.",
        )
        assert await still_open(after)
        await after.close()

    run(body)


def test_a_counted_stream_whose_slot_lapsed_is_not_closed_for_it(run, user, settings):
    """A heartbeat slowed by a slow reader (or Redis flushed) let a live stream's lease lapse; a new stream of the
    user took the slot, and the old one, admitted within the limit, was closed 4429."""
    from stream.slots import slots_key

    settings.STREAM_MAX_PER_USER = 1
    settings.STREAM_HEARTBEAT_SECONDS = 0.2

    async def body():
        first, second = Client(), Client()
        assert (await first.login(user))["user_id"] == user.pk
        redis.Redis.from_url(django_settings.REDIS_URL).delete(slots_key(user.pk))  # its slot gone (a flush)
        assert (await second.login(user))["user_id"] == user.pk
        await asyncio.sleep(0.7)  # its heartbeats find no slot free
        assert await still_open(first)
        await first.close()
        await second.close()

    run(body)


def test_a_process_whose_clock_runs_ahead_neither_purges_live_slots_nor_outlasts_its_lease(monkeypatch):
    """Leases were stamped, and lapsed slots purged, by each web process's own clock: a machine an hour ahead
    purged every other machine's live slots (its sockets went past the limit), and its own outlived their lease."""
    import time

    from stream import slots

    real = time.time

    async def claims() -> list[bool]:
        granted = [await slots.slot_claim(user_id=987655, channel="specific.here", limit=1)]
        monkeypatch.setattr(slots.time, "time", lambda: real() + 3600)  # the other machine's clock
        granted.append(await slots.slot_claim(user_id=987655, channel="specific.ahead", limit=1))
        return granted

    assert asyncio.run(claims()) == [True, False]


def test_redis_down_at_the_claim_lets_the_stream_open_and_is_logged_once(run, user, settings):
    """Fails open: the limit guards against abuse; the token and the user's row, checked as before, decide who
    may stream."""
    settings.STREAM_MAX_PER_USER = 1
    settings.REDIS_URL = "redis://127.0.0.1:1/12"  # the slots' Redis only: the channel layer keeps its own

    async def body():
        first, second = Client(), Client()
        assert (await first.login(user))["user_id"] == user.pk
        assert (await second.login(user))["user_id"] == user.pk
        await first.close()
        await second.close()

    with capture_logs() as logs:
        run(body)
    assert [log["event"] for log in logs if log["event"].startswith("stream_slots")] == [
        "stream_slots_unavailable"
    ]
