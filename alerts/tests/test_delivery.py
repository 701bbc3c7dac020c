"""Delivery of a firing on each channel: signed webhooks with retries, Apprise, the live stream, SSRF refusal."""

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
import time_machine
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from alerts.models import AlertDelivery, AlertEvent
from alerts.outbound import DeliveryRefused, resolve_checked
from alerts.services import alerts_evaluate_price, delivery_attempt
from alerts.tests.factories import AlertFactory, ChannelFactory

pytestmark = pytest.mark.django_db
SECRET = "a-very-long-shared-secret-1234"


def fire(alert, callbacks):
    with callbacks(execute=True):
        assert (
            len(alerts_evaluate_price(symbol=alert.symbol, price=alert.threshold + 1, change_pct=None)) == 1
        )
    return AlertEvent.objects.get(alert=alert)


def test_webhook_is_signed_and_retried_after_a_500_until_delivered(
    receiver, allow_private, django_capture_on_commit_callbacks
):
    alert = AlertFactory(channels=["webhook"])
    channel = ChannelFactory(user=alert.user, url=receiver.url, secret=SECRET)
    receiver.statuses = [500, 200]
    event = fire(alert, django_capture_on_commit_callbacks)
    assert len(receiver.requests) == 2
    for request in receiver.requests:
        expected = "sha256=" + hmac.new(SECRET.encode(), request["body"], hashlib.sha256).hexdigest()
        assert request["headers"]["X-Tradingdash-Signature"] == expected
        assert request["headers"]["X-Tradingdash-Event-Id"] == str(event.pk)
        assert request["path"] == "/hook"
    body = json.loads(receiver.requests[-1]["body"])
    assert body["id"] == event.pk and body["symbol"] == "TCS.NS" and body["kind"] == "price_above"
    assert body["value"] == 101.0 and body["threshold"] == 100.0
    delivery = AlertDelivery.objects.get(event=event)
    assert (delivery.state, delivery.attempts, delivery.channel_id) == ("delivered", 2, channel.pk)
    assert "HTTP 500" in delivery.last_error and delivery.delivered_at is not None


def test_a_4xx_fails_at_once(receiver, allow_private, django_capture_on_commit_callbacks):
    alert = AlertFactory(channels=["webhook"])
    ChannelFactory(user=alert.user, url=receiver.url)
    receiver.statuses = [410]
    fire(alert, django_capture_on_commit_callbacks)
    delivery = AlertDelivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("failed", 1)
    assert "HTTP 410" in delivery.last_error and len(receiver.requests) == 1


def test_transient_failures_back_off_exponentially_and_give_up_after_24_hours(receiver, allow_private):
    alert = AlertFactory(channels=["webhook"])
    ChannelFactory(user=alert.user, url=receiver.url)
    alerts_evaluate_price(symbol="TCS.NS", price=101.0, change_pct=None)  # deliveries queued, not run
    delivery = AlertDelivery.objects.get()
    receiver.statuses = [503, 502, 500]
    assert delivery_attempt(delivery_id=delivery.pk).retry_in == 60
    assert delivery_attempt(delivery_id=delivery.pk).retry_in == 120
    with time_machine.travel(timezone.now() + timedelta(hours=24)):
        attempt = delivery_attempt(delivery_id=delivery.pk)
    assert attempt.retry_in is None and attempt.state == "failed"
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("failed", 3) and "HTTP 500" in delivery.last_error
    assert delivery_attempt(delivery_id=delivery.pk).state == "failed"  # a redelivered task sends nothing
    assert len(receiver.requests) == 3


def test_a_timeout_is_retried(allow_private, settings):
    import socket

    settings.ALERT_WEBHOOK_TIMEOUT = 0.2
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    try:
        alert = AlertFactory(channels=["webhook"])
        ChannelFactory(user=alert.user, url=f"http://127.0.0.1:{silent.getsockname()[1]}/hook")
        alerts_evaluate_price(symbol="TCS.NS", price=101.0, change_pct=None)
        attempt = delivery_attempt(delivery_id=AlertDelivery.objects.get().pk)
    finally:
        silent.close()
    assert attempt.retry_in == 60
    assert "Timeout" in AlertDelivery.objects.get().last_error


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8000/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_private_loopback_and_link_local_webhooks_are_refused(auth_client, url):
    response = auth_client.post(
        "/api/notifications/channels", {"kind": "webhook", "url": url, "secret": SECRET}, format="json"
    )
    assert response.status_code == 400
    assert "private" in response.json()["error"]["details"]["url"][0]


def test_every_resolved_address_is_checked(monkeypatch):
    import socket

    answers = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, 443)) for ip in ("93.184.215.14", "10.0.0.7")]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: answers)
    with pytest.raises(DeliveryRefused, match=r"10\.0\.0\.7"):
        resolve_checked("rebinding.example", 443)


def test_a_host_that_turns_private_after_saving_is_refused_at_delivery(
    receiver, settings, django_capture_on_commit_callbacks
):
    alert = AlertFactory(channels=["webhook"])
    ChannelFactory(user=alert.user, url=receiver.url)  # saved while allowed (or DNS said public then)
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False
    fire(alert, django_capture_on_commit_callbacks)
    delivery = AlertDelivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("failed", 1) and "private" in delivery.last_error
    assert receiver.requests == []


def test_apprise_json_url_is_delivered(receiver, allow_private, django_capture_on_commit_callbacks):
    alert = AlertFactory(channels=["apprise"])
    port = receiver.server.server_address[1]
    ChannelFactory(user=alert.user, kind="apprise", url=f"json://127.0.0.1:{port}/notify", secret="")
    fire(alert, django_capture_on_commit_callbacks)
    assert AlertDelivery.objects.get().state == "delivered"
    sent = json.loads(receiver.requests[0]["body"])
    assert "TCS.NS" in sent["title"] and "above 100" in sent["message"]


def test_a_failed_apprise_send_is_recorded(
    receiver, allow_private, settings, django_capture_on_commit_callbacks
):
    settings.ALERT_DELIVERY_MAX_AGE = 0  # no retries left: the first failure is final
    alert = AlertFactory(channels=["apprise"])
    port = receiver.server.server_address[1]
    ChannelFactory(user=alert.user, kind="apprise", url=f"json://127.0.0.1:{port}/notify", secret="")
    receiver.statuses = [500]
    fire(alert, django_capture_on_commit_callbacks)
    delivery = AlertDelivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("failed", 1) and delivery.last_error


def test_an_apprise_send_does_not_follow_a_redirect(
    receiver, allow_private, settings, django_capture_on_commit_callbacks
):
    """Apprise follows redirects by default: a public host answering 307 sent the notification on to whatever
    address it named, a private one included, past the check made on the channel's own host."""
    from alerts.tests.receiver import Receiver

    settings.ALERT_DELIVERY_MAX_AGE = 0  # no retries left: the first failure is final
    alert = AlertFactory(channels=["apprise"])
    ChannelFactory(user=alert.user, kind="apprise", url=f"json://127.0.0.1:{receiver.port}/notify", secret="")
    with Receiver() as internal:
        receiver.statuses, receiver.location = [307], f"{internal.url}"
        fire(alert, django_capture_on_commit_callbacks)
        assert internal.requests == []
    assert len(receiver.requests) == 1
    assert AlertDelivery.objects.get().state == "failed"


def test_an_apprise_url_asking_to_follow_redirects_is_refused():
    from alerts.outbound import apprise_check

    with pytest.raises(DeliveryRefused, match="redirect"):
        apprise_check("json://hooks.example.com/notify?redirect=yes")


def test_an_apprise_host_that_resolves_privately_is_refused_without_naming_it():
    """An Apprise URL's "host" is often a secret token; the refusal is stored in last_error and shown."""
    from alerts.outbound import apprise_check

    with pytest.raises(DeliveryRefused, match="private or reserved") as refused:
        apprise_check("json://127.0.0.1/secret-token-path")
    assert "127.0.0.1" not in str(refused.value)
    with pytest.raises(DeliveryRefused) as refused:
        apprise_check("json://localhost/notify")
    assert "localhost" not in str(refused.value)


def test_stream_channel_publishes_to_the_users_group(settings, django_capture_on_commit_callbacks):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    layer = get_channel_layer()
    alert = AlertFactory(channels=["stream"])
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"user.{alert.user_id}", channel)
    try:
        event = fire(alert, django_capture_on_commit_callbacks)
        received = async_to_sync(layer.receive)(channel)
    finally:
        channel_layers.backends.clear()
    assert received["type"] == "stream.message"
    message = json.loads(received["text"])
    assert message["type"] == "alert" and message["id"] == event.pk
    assert AlertDelivery.objects.get().state == "delivered"


def test_a_stream_delivery_the_channel_layer_failed_is_retried_not_recorded_delivered(settings):
    """stream.publish swallowed the channel layer's error (right for quotes and candles, which the next refresh
    replaces), so an alert published while Redis was down was recorded delivered: never sent, never retried."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "stream.layers.PubSubChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},  # nothing listens there
        }
    }
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    alert = AlertFactory(channels=["stream"])
    alerts_evaluate_price(symbol=alert.symbol, price=101.0, change_pct=None)  # deliveries queued, not run
    delivery = AlertDelivery.objects.get()
    try:
        attempt = delivery_attempt(delivery_id=delivery.pk)
    finally:
        channel_layers.backends.clear()
    assert attempt.retry_in == 60
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == (
        "pending",
        1,
    ) and "Stream publish failed" in delivery.last_error


def test_the_streamed_alert_reads_its_value_like_the_api(settings, django_capture_on_commit_callbacks):
    """The dashboard's live alert shows the same value as /api/alerts/events: a price at the tick."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    layer = get_channel_layer()
    alert = AlertFactory(channels=["stream"], threshold=1430.6999999999998)
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"user.{alert.user_id}", channel)
    try:
        fire(alert, django_capture_on_commit_callbacks)
        received = async_to_sync(layer.receive)(channel)
    finally:
        channel_layers.backends.clear()
    assert json.loads(received["text"])["value"] == 1431.7


def test_the_connection_goes_to_the_checked_address_with_the_original_host(
    receiver, allow_private, monkeypatch
):
    import socket

    port = receiver.server.server_address[1]
    calls = []

    def getaddrinfo(host, *args, **kwargs):
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    from alerts.outbound import webhook_post

    assert (
        webhook_post(url=f"http://hooks.example.com:{port}/hook?x=1", secret=SECRET, event_id="1", body=b"{}")
        == 200
    )
    # The name is resolved once, for the check; the connection is opened to the checked address itself.
    assert calls == ["hooks.example.com", "127.0.0.1"]
    request = receiver.requests[0]
    assert request["headers"]["Host"] == f"hooks.example.com:{port}" and request["path"] == "/hook?x=1"


def test_a_delivery_whose_task_was_lost_is_queued_again_and_sent_once(
    receiver, allow_private, django_capture_on_commit_callbacks
):
    """The deliveries' tasks are queued after the firing commits; with the broker down then (or a message lost
    later), nothing ever tried them again: pending for ever, the user never told."""
    from alerts.tasks import requeue_overdue_deliveries

    alert = AlertFactory(channels=["webhook"])
    ChannelFactory(user=alert.user, url=receiver.url)
    with django_capture_on_commit_callbacks(execute=False):  # the deliver task never reaches a worker
        alerts_evaluate_price(symbol=alert.symbol, price=101.0, change_pct=None)
    delivery = AlertDelivery.objects.get()
    assert requeue_overdue_deliveries() == 0  # not overdue yet: its task may still come
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        assert requeue_overdue_deliveries() == 1
        assert requeue_overdue_deliveries() == 0
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("delivered", 1) and len(receiver.requests) == 1


def test_a_copy_of_a_delivery_task_sends_nothing_and_starts_no_second_retry_chain(receiver, allow_private):
    """A retry waits in the worker up to an hour (its countdown) while the Redis broker redelivers a message
    unacknowledged past its visibility timeout (an hour): both copies sent, and each scheduled its own retries."""
    alert = AlertFactory(channels=["webhook"])
    ChannelFactory(user=alert.user, url=receiver.url)
    alerts_evaluate_price(symbol="TCS.NS", price=101.0, change_pct=None)  # deliveries queued, not run
    delivery = AlertDelivery.objects.get()
    receiver.statuses = [503]
    first = delivery_attempt(delivery_id=delivery.pk, attempt=0)
    assert (first.retry_in, first.attempts) == (60, 1)
    assert delivery_attempt(delivery_id=delivery.pk, attempt=0).retry_in is None  # the broker's copy
    assert len(receiver.requests) == 1
    assert delivery_attempt(delivery_id=delivery.pk, attempt=1).state == "delivered"  # the retry itself
    assert len(receiver.requests) == 2 and AlertDelivery.objects.get().attempts == 2


def test_a_lost_delivery_past_its_max_age_fails_saying_why(allow_private, django_capture_on_commit_callbacks):
    from alerts.tasks import requeue_overdue_deliveries

    alert = AlertFactory(channels=["stream"])
    with django_capture_on_commit_callbacks(execute=False):
        alerts_evaluate_price(symbol=alert.symbol, price=101.0, change_pct=None)
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        assert requeue_overdue_deliveries() == 0
    delivery = AlertDelivery.objects.get()
    assert delivery.state == "failed" and "task was lost" in delivery.last_error


@pytest.mark.parametrize("how", ["turned off", "deleted"])
def test_a_retry_for_an_alert_turned_off_since_is_not_sent(allow_private, settings, how):
    """The first try is made (the alert was on when it fired); a retry after the user turned it off is dropped."""
    import socket

    settings.ALERT_WEBHOOK_TIMEOUT = 0.2
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers: every try fails and asks for a retry
    try:
        alert = AlertFactory(channels=["webhook"])
        ChannelFactory(user=alert.user, url=f"http://127.0.0.1:{silent.getsockname()[1]}/hook")
        alerts_evaluate_price(symbol="TCS.NS", price=101.0, change_pct=None)
        delivery = AlertDelivery.objects.get()
        assert delivery_attempt(delivery_id=delivery.pk).retry_in == 60
        if how == "deleted":
            alert.delete()
        else:
            alert.active = False
            alert.save(update_fields=["active"])
        retried = delivery_attempt(delivery_id=delivery.pk, attempt=1)
    finally:
        silent.close()
    delivery.refresh_from_db()
    assert (retried.state, delivery.state, delivery.attempts) == ("failed", "failed", 1)
    assert delivery.last_error == "Not retried: the alert was turned off."
