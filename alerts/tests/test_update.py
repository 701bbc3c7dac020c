"""Editing an alert (API, admin) against the evaluator firing it: edits never roll back a firing, and only a new
condition re-arms."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.admin.sites import site
from django.test import RequestFactory

from alerts.models import Alert, AlertEvent
from alerts.services import alert_update, alerts_evaluate_price
from alerts.tests.factories import AlertFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 3, 6, 30, tzinfo=UTC)


def price(alert, value, *, at):
    return alerts_evaluate_price(symbol=alert.symbol, price=value, change_pct=None, observed_at=at)


def _fire_again_later(alert) -> list[int]:
    fired = []
    for hour in range(1, 4):
        price(alert, 90.0, at=NOW + timedelta(hours=hour))
        fired += price(alert, 110.0, at=NOW + timedelta(hours=hour, minutes=1))
    return fired


def test_an_edit_from_a_copy_loaded_before_a_firing_keeps_the_firing_and_the_alert_fires_again():
    alert = AlertFactory(threshold=100.0, cooldown_minutes=0)
    loaded_by_request = Alert.objects.get(pk=alert.pk)  # the PATCH view loads the alert...
    assert len(price(alert, 101.0, at=NOW)) == 1  # ...a worker fires it meanwhile...
    alert_update(alert=loaded_by_request, channels=["stream"])  # ...then the PATCH saves
    stored = Alert.objects.get(pk=alert.pk)
    assert (stored.fired_count, stored.armed, stored.last_fired_at) == (1, False, NOW)
    assert price(alert, 102.0, at=NOW + timedelta(minutes=5)) == []  # still the same crossing
    assert len(_fire_again_later(alert)) == 3


def test_an_admin_save_from_a_form_loaded_before_a_firing_keeps_the_firing():
    alert = AlertFactory(threshold=100.0, cooldown_minutes=0)
    stale = Alert.objects.get(pk=alert.pk)
    assert len(price(alert, 101.0, at=NOW)) == 1
    request = RequestFactory().post("/admin/alerts/alert/")
    model_admin = site._registry[Alert]
    form_class = model_admin.get_form(request, stale, change=True)
    data = {
        "user": stale.user_id,
        "symbol": stale.symbol,
        "kind": stale.kind,
        "threshold": stale.threshold,
        "signal_type": stale.signal_type,
        "channels": '["stream"]',
        "active": "on",
        "cooldown_minutes": 5,
    }
    form = form_class(data, instance=stale)
    assert form.is_valid(), form.errors
    model_admin.save_model(request, form.save(commit=False), form, change=True)
    stored = Alert.objects.get(pk=alert.pk)
    assert stored.cooldown_minutes == 5
    assert (stored.fired_count, stored.armed, stored.last_fired_at) == (1, False, NOW)
    assert len(_fire_again_later(alert)) == 3


def test_a_retried_evaluation_of_the_same_crossing_notifies_once_even_if_the_state_was_rolled_back():
    alert = AlertFactory(threshold=100.0, cooldown_minutes=0)
    assert len(price(alert, 101.0, at=NOW)) == 1
    Alert.objects.filter(pk=alert.pk).update(armed=True, fired_count=0, last_fired_at=None)
    assert price(alert, 101.0, at=NOW) == []  # the same quote evaluated again (a redelivered task)
    assert AlertEvent.objects.count() == 1


def test_an_edit_that_sends_the_unchanged_condition_back_does_not_rearm(auth_client, user, tcs):
    alert = AlertFactory(user=user, threshold=100.0, cooldown_minutes=30)
    assert len(price(alert, 101.0, at=NOW)) == 1
    body = {
        "symbol": "TCS.NS",
        "kind": "price_above",
        "threshold": 100.0,
        "channels": ["stream"],
        "active": True,
    }
    assert auth_client.patch(f"/api/alerts/{alert.pk}", body, format="json").status_code == 200
    assert not Alert.objects.get(pk=alert.pk).armed
    assert price(alert, 101.5, at=NOW + timedelta(hours=1)) == []  # the price never went back: same crossing
    assert AlertEvent.objects.count() == 1


def test_a_new_threshold_or_reactivation_rearms():
    alert = AlertFactory(threshold=100.0)
    price(alert, 101.0, at=NOW)
    assert alert_update(alert=Alert.objects.get(pk=alert.pk), threshold=110.0).armed
    price(alert, 111.0, at=NOW + timedelta(hours=2))
    alert_update(alert=Alert.objects.get(pk=alert.pk), active=False)
    assert not Alert.objects.get(pk=alert.pk).armed
    assert alert_update(alert=Alert.objects.get(pk=alert.pk), active=True).armed


def test_a_new_condition_crossed_by_the_bar_that_fired_the_old_one_fires(django_capture_on_commit_callbacks):
    """A sync that stores the last bar again with new values (a correction) announces it: after an edit
    re-armed the alert, that same bar crossing the new threshold had the old firing's key, so it was swallowed
    (disarmed with no event, nobody told)."""
    from market.services import candles_upsert
    from market.tests.factories import make_candles
    from market.timeframes import Timeframe

    alert = AlertFactory(threshold=100.0, cooldown_minutes=0)
    bar = make_candles(1, start=datetime(2026, 6, 4, 18, 30, tzinfo=UTC))  # Friday 5 June
    saturday = datetime(2026, 6, 6, 6, 30, tzinfo=UTC)
    with time_machine.travel(saturday, tick=False):
        # The bar stored again identically would not be announced (nothing changed): the second time it is
        # corrected.
        for threshold, price in ((100.0, 106.0), (105.0, 106.5)):
            bar[["open", "high", "low", "close"]] = price
            alert_update(alert=Alert.objects.get(pk=alert.pk), threshold=threshold)
            with django_capture_on_commit_callbacks(execute=True):
                candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=bar, source="test")
    assert list(
        AlertEvent.objects.filter(alert=alert).order_by("id").values_list("threshold", flat=True)
    ) == [
        100.0,
        105.0,
    ]
    assert Alert.objects.get(pk=alert.pk).fired_count == 2


def test_a_new_threshold_crossed_within_the_old_firings_cooldown_fires():
    """The cooldown stops a price oscillating around one threshold from paging again; a user who raises the
    threshold after a firing asks to be told of the new one. Its crossing minutes later was swallowed: the alert
    disarmed with no event, and nobody was told until the price went back below and crossed again."""
    alert = AlertFactory(threshold=100.0, cooldown_minutes=60)
    assert len(price(alert, 101.0, at=NOW)) == 1
    alert_update(alert=Alert.objects.get(pk=alert.pk), threshold=110.0)
    assert len(price(alert, 111.0, at=NOW + timedelta(minutes=10))) == 1
    assert price(alert, 109.0, at=NOW + timedelta(minutes=20)) == []
    assert price(alert, 111.0, at=NOW + timedelta(minutes=30)) == []  # the new condition's own cooldown
