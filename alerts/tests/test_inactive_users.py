"""A deactivated user's alerts neither fire nor notify."""

from datetime import UTC, datetime

import pytest

from alerts.models import AlertDelivery, AlertEvent
from alerts.services import alerts_evaluate_price, delivery_attempt
from alerts.tasks import evaluate_signal
from alerts.tests.factories import AlertFactory, ChannelFactory
from signals.tests.factories import TradingSignalFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 3, 6, 30, tzinfo=UTC)


def _deactivate(user) -> None:
    type(user).objects.filter(pk=user.pk).update(is_active=False)


def test_a_deactivated_users_price_alerts_do_not_fire(
    django_capture_on_commit_callbacks, receiver, allow_private
):
    alert = AlertFactory(threshold=100.0, channels=["stream", "webhook"])
    ChannelFactory(user=alert.user, url=receiver.url)
    active = AlertFactory(threshold=100.0)
    _deactivate(alert.user)
    with django_capture_on_commit_callbacks(execute=True):
        fired = alerts_evaluate_price(symbol="TCS.NS", price=101.0, change_pct=None, observed_at=NOW)
    assert list(AlertEvent.objects.values_list("id", "alert_id")) == [(fired[0], active.pk)]
    assert receiver.requests == []


def test_a_deactivated_users_signal_alerts_do_not_fire():
    alert = AlertFactory(kind="signal", threshold=None, signal_type="BUY")
    _deactivate(alert.user)
    signal = TradingSignalFactory(candle_timestamp=NOW)
    assert evaluate_signal.delay(signal.pk).get() == []
    assert not AlertEvent.objects.exists()


def test_a_pending_delivery_of_a_user_deactivated_since_the_firing_fails_unsent(receiver, allow_private):
    alert = AlertFactory(threshold=100.0, channels=["webhook"])
    ChannelFactory(user=alert.user, url=receiver.url)
    alerts_evaluate_price(symbol="TCS.NS", price=101.0, change_pct=None, observed_at=NOW)  # deliveries queued
    delivery = AlertDelivery.objects.get()
    _deactivate(alert.user)
    assert delivery_attempt(delivery_id=delivery.pk).state == "failed"
    delivery.refresh_from_db()
    assert delivery.state == "failed" and "deactivated" in delivery.last_error
    assert receiver.requests == []
