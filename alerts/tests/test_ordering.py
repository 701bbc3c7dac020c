"""Evaluations run in any order on several workers: a quote or bar older than the newest one evaluated is
skipped, so a superseded price never fires."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from alerts.models import Alert, AlertEvent
from alerts.tasks import evaluate_quote
from alerts.tests.factories import AlertFactory
from market.services import candles_upsert
from market.tests.factories import make_candles
from market.timeframes import Timeframe
from tradingdash.events import QuoteRefreshed, announce

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 3, 6, 30, tzinfo=UTC)


def test_an_older_quote_evaluated_after_a_newer_one_does_not_fire():
    alert = AlertFactory(threshold=100.0, cooldown_minutes=0)
    # 12:00 is 105, 12:01 is 95; the 12:01 task runs first.
    assert evaluate_quote("TCS.NS", 95.0, None, (NOW + timedelta(minutes=1)).isoformat()) == []
    assert evaluate_quote("TCS.NS", 105.0, None, NOW.isoformat()) == []
    assert not AlertEvent.objects.exists()
    stored = Alert.objects.get(pk=alert.pk)
    assert stored.last_observed_at == NOW + timedelta(minutes=1) and stored.last_value == 95.0
    assert len(evaluate_quote("TCS.NS", 105.0, None, (NOW + timedelta(minutes=2)).isoformat())) == 1


def test_a_refreshed_quote_is_evaluated_as_of_its_own_time_and_fires_when_evaluated(
    django_capture_on_commit_callbacks,
):
    # Friday's close, evaluated before Monday's open: ordered by the quote's time, fired (and delivered, within
    # ALERT_DELIVERY_MAX_AGE of the firing) on Monday.
    alert = AlertFactory(threshold=100.0)
    quote = {"symbol": "TCS.NS", "price": 101.0, "change_percent": 1.0, "timestamp": NOW.isoformat()}
    monday = NOW + timedelta(days=2, hours=20)
    with time_machine.travel(monday, tick=False), django_capture_on_commit_callbacks(execute=True):
        announce(QuoteRefreshed(symbol="TCS.NS", quote=quote))
    event = AlertEvent.objects.get(alert=alert)
    assert event.fired_at == monday and event.details["observed_at"] == NOW.isoformat()
    assert Alert.objects.get(pk=alert.pk).last_observed_at == NOW


def test_stored_candles_are_evaluated_as_of_the_end_of_the_last_bar(django_capture_on_commit_callbacks):
    candles = make_candles(5, start=datetime(2026, 5, 25, 18, 30, tzinfo=UTC))
    alert = AlertFactory(threshold=1.0)
    with django_capture_on_commit_callbacks(execute=True):
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=candles, source="test")
    bar_end = candles.index[-1].to_pydatetime() + timedelta(days=1)
    assert Alert.objects.get(pk=alert.pk).last_observed_at == bar_end
    assert AlertEvent.objects.get(alert=alert).details["observed_at"] == bar_end.isoformat()
    # A quote from before that bar closed, evaluated late, changes nothing.
    Alert.objects.filter(pk=alert.pk).update(armed=True, threshold=0.5)
    assert evaluate_quote("TCS.NS", 0.4, None, (bar_end - timedelta(hours=2)).isoformat()) == []
    assert Alert.objects.get(pk=alert.pk).last_value == pytest.approx(float(candles["close"].iloc[-1]))
