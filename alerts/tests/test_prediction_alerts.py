"""prediction_miss alerts tell a user of system predictions and of their own, never of another user's."""

from datetime import UTC, datetime

import pytest

from accounts.tests.factories import UserFactory
from alerts.models import AlertEvent
from alerts.tasks import evaluate_prediction
from alerts.tests.factories import AlertFactory
from predictions.models import Prediction
from predictions.tests.factories import PredictionFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 3, 6, 30, tzinfo=UTC)


def _missed(requested_by=None) -> Prediction:
    return PredictionFactory(
        lower_bound=120.0,
        upper_bound=127.0,
        base_timestamp=NOW,
        realized_price=90.0,
        requested_by=requested_by,
    )


def test_another_users_prediction_fires_only_its_owners_alert():
    owner, other = UserFactory(), UserFactory()
    owners_alert = AlertFactory(user=owner, kind="prediction_miss", threshold=None, cooldown_minutes=0)
    AlertFactory(user=other, kind="prediction_miss", threshold=None, cooldown_minutes=0)
    assert len(evaluate_prediction.delay(_missed(requested_by=owner).pk).get()) == 1
    assert list(AlertEvent.objects.values_list("alert_id", "user_id")) == [(owners_alert.pk, owner.pk)]
    assert not AlertEvent.objects.filter(user=other).exists()


def test_a_system_prediction_fires_every_users_alert():
    first = AlertFactory(kind="prediction_miss", threshold=None)
    second = AlertFactory(kind="prediction_miss", threshold=None)
    assert len(evaluate_prediction.delay(_missed().pk).get()) == 2
    assert set(AlertEvent.objects.values_list("alert_id", flat=True)) == {first.pk, second.pk}


def test_a_replayed_prediction_scored_later_fires_no_alert():
    """A backfill's replay is made afterwards, as of a past bar: a forecast nobody made or acted on. Scored (its
    target bar final later, or corrected), it was announced like any prediction and told users a model had
    missed, in the words of a live forecast."""
    alert = AlertFactory(kind="prediction_miss", threshold=None, cooldown_minutes=0)
    replayed = PredictionFactory(
        lower_bound=120.0, upper_bound=127.0, base_timestamp=NOW, realized_price=90.0, replayed=True
    )
    assert evaluate_prediction.delay(replayed.pk).get() == []
    assert not AlertEvent.objects.filter(alert=alert).exists()


def test_a_prediction_made_on_synthetic_candles_says_so_in_its_alert():
    """The message is all an Apprise channel shows: a miss of a forecast on demo data must not read as one on
    the market's prices."""
    alert = AlertFactory(kind="prediction_miss", threshold=None)
    missed = PredictionFactory(
        lower_bound=120.0, upper_bound=127.0, base_timestamp=NOW, realized_price=90.0, source="synthetic"
    )
    evaluate_prediction.delay(missed.pk).get()
    event = AlertEvent.objects.get(alert=alert)
    assert event.message.endswith("(synthetic data, not market prices)")
    assert event.details["source"] == "synthetic"
