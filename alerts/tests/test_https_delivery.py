"""https webhooks against a real TLS receiver on loopback with a throwaway certificate authority: verified through
ALERT_WEBHOOK_CA_BUNDLE, signed; a certificate that does not verify fails the delivery at once, with the reason."""

import hashlib
import hmac
import socket

import pytest

from alerts.models import AlertDelivery
from alerts.outbound import webhook_post
from alerts.tests.factories import AlertFactory, ChannelFactory
from alerts.tests.receiver import Receiver
from alerts.tests.test_delivery import SECRET, fire
from alerts.tests.tls import CA

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def ca() -> CA:
    return CA.create()


@pytest.fixture
def trusted(ca, tmp_path, settings, allow_private):
    """The delivery client trusts `ca` (and only it)."""
    settings.ALERT_WEBHOOK_CA_BUNDLE = str(ca.write_bundle(tmp_path / "ca.pem"))
    return ca


def tls_receiver(ca: CA, directory, host: str = "127.0.0.1") -> Receiver:
    return Receiver(tls=ca.server_context(directory, host=host))


def test_https_webhook_is_verified_through_the_ca_bundle_and_signed(
    trusted, tmp_path, django_capture_on_commit_callbacks
):
    with tls_receiver(trusted, tmp_path) as receiver:
        alert = AlertFactory(channels=["webhook"])
        ChannelFactory(user=alert.user, url=receiver.url, secret=SECRET)
        event = fire(alert, django_capture_on_commit_callbacks)
    assert receiver.url.startswith("https://")
    [request] = receiver.requests
    expected = "sha256=" + hmac.new(SECRET.encode(), request["body"], hashlib.sha256).hexdigest()
    assert request["headers"]["X-Tradingdash-Signature"] == expected
    assert request["headers"]["X-Tradingdash-Event-Id"] == str(event.pk)
    delivery = AlertDelivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("delivered", 1, "")


def test_a_certificate_of_an_unknown_authority_fails_the_delivery_with_the_reason(
    trusted, tmp_path, auth_client, user, django_capture_on_commit_callbacks
):
    stranger = CA.create("not trusted")
    with tls_receiver(stranger, tmp_path) as receiver:
        alert = AlertFactory(user=user, channels=["webhook"])
        ChannelFactory(user=user, url=receiver.url, secret=SECRET)
        fire(alert, django_capture_on_commit_callbacks)
    assert receiver.requests == []  # nothing was sent over the untrusted connection
    delivery = AlertDelivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("failed", 1)  # not retried: trying again will not help
    assert delivery.last_error == (
        "The TLS certificate of 127.0.0.1 could not be verified: unable to get local issuer certificate."
    )
    response = auth_client.get("/api/alerts/events")
    assert response.status_code == 200
    [webhook] = response.json()["results"][0]["deliveries"]
    assert webhook["state"] == "failed" and "could not be verified" in webhook["last_error"]


def test_a_certificate_for_another_host_fails(trusted, tmp_path, django_capture_on_commit_callbacks):
    with tls_receiver(trusted, tmp_path, host="elsewhere.example.com") as receiver:
        alert = AlertFactory(channels=["webhook"])
        ChannelFactory(user=alert.user, url=receiver.url, secret=SECRET)
        fire(alert, django_capture_on_commit_callbacks)
    delivery = AlertDelivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("failed", 1)
    assert delivery.last_error == (
        "The TLS certificate of 127.0.0.1 could not be verified: "
        "hostname '127.0.0.1' doesn't match 'elsewhere.example.com'."
    )
    assert receiver.requests == []


def test_the_pinned_address_is_verified_against_the_url_host_name(trusted, tmp_path, monkeypatch):
    """The connection goes to the checked address, while TLS (SNI and the certificate) uses the URL's name."""
    with tls_receiver(trusted, tmp_path, host="hooks.example.com") as receiver:
        monkeypatch.setattr(
            socket,
            "getaddrinfo",
            lambda host, port, *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))],
        )
        url = f"https://hooks.example.com:{receiver.port}/hook"
        assert webhook_post(url=url, secret=SECRET, event_id="1", body=b"{}") == 200
    assert receiver.requests[0]["headers"]["Host"] == f"hooks.example.com:{receiver.port}"


def test_the_channel_test_endpoint_reports_a_bad_certificate(trusted, tmp_path, auth_client, user):
    with tls_receiver(CA.create("not trusted"), tmp_path) as receiver:
        channel = ChannelFactory(user=user, url=receiver.url, secret=SECRET)
        response = auth_client.post(f"/api/notifications/channels/{channel.pk}/test")
    assert response.status_code == 200
    assert response.json()["delivered"] is False
    assert "TLS certificate of 127.0.0.1 could not be verified" in response.json()["error"]
