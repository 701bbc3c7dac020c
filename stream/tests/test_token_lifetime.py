"""A stream lives no longer than the access token it authenticated with, nor than its user's right to log in:
then it closes with 4401 and the user's private messages (alerts, tasks) stop at once."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from asgiref.sync import sync_to_async
from django.utils import timezone

from accounts.services import password_change
from stream.publish import publish_to_user
from stream.tests.conftest import Client
from tradingdash import events

pytestmark = pytest.mark.django_db(transaction=True)

PAST_EXPIRY = timedelta(minutes=31)  # ACCESS_TOKEN_LIFETIME is 30 minutes


async def closed_with(client: Client) -> int:
    """The close code, past the few heartbeats sent before the close (at 0.1 s each, 20 are 2 s)."""
    for _ in range(20):
        output = await client.communicator.receive_output(timeout=2)
        if output["type"] != "websocket.send" or json.loads(output["text"])["type"] != "heartbeat":
            assert output["type"] == "websocket.close", output
            return output["code"]
    raise AssertionError("still open: heartbeats keep coming")


async def publish_private(user_id: int) -> None:
    await sync_to_async(publish_to_user)(user_id, {"type": "alert", "alert_id": 1, "symbol": "TCS.NS"})
    await sync_to_async(events.announce)(
        events.TaskUpdated(task_id="t-1", name="predictions.train_models", user_id=user_id, state="PROGRESS")
    )


async def assert_ended(client: Client, user_id: int) -> None:
    """The socket closed with 4401, and a private message published after that reaches nobody."""
    assert await closed_with(client) == 4401
    await publish_private(user_id)
    assert await client.nothing()
    await client.close()


def test_the_stream_closes_with_4401_when_its_token_expires_and_private_messages_stop(run, user, settings):
    settings.STREAM_HEARTBEAT_SECONDS = 0.1

    async def body():
        client = Client()
        await client.login(user)
        await publish_private(user.pk)
        assert (await client.receive_type("alert"))["alert_id"] == 1
        await client.receive_type("task")
        traveller.shift(PAST_EXPIRY)
        await assert_ended(client, user.pk)

    with time_machine.travel(timezone.now(), tick=True) as traveller:
        run(body)


def test_no_private_message_goes_out_after_expiry_even_before_the_next_heartbeat(run, user, settings):
    settings.STREAM_HEARTBEAT_SECONDS = 600

    async def body():
        client = Client()
        await client.login(user)
        traveller.shift(PAST_EXPIRY)
        await publish_private(user.pk)
        assert await closed_with(client) == 4401
        assert await client.nothing()
        await client.close()

    with time_machine.travel(timezone.now(), tick=True) as traveller:
        run(body)


def _deactivate(user) -> None:
    type(user).objects.filter(pk=user.pk).update(is_active=False)


def _change_password(user) -> None:
    # As API sessions elsewhere end (accounts.services.password_change): the stream's access token was issued
    # under the old password.
    password_change(user=user, new_password="another-Passw0rd!")


@pytest.mark.parametrize("change", [_deactivate, _change_password], ids=["deactivated", "password_changed"])
def test_the_stream_closes_with_4401_when_its_user_may_no_longer_use_its_token(run, user, settings, change):
    settings.STREAM_HEARTBEAT_SECONDS = 0.1
    settings.AUTH_USER_CACHE_SECONDS = 0  # re-checked at every heartbeat

    async def body():
        client = Client()
        await client.login(user)
        await client.receive_type("heartbeat")
        await sync_to_async(change)(user)
        await assert_ended(client, user.pk)

    run(body)
