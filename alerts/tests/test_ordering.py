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
    # Friday's close (a quote stamped, as providers stamp it, with its daily bar's open), evaluated before
    # Monday's open: ordered by the end of Friday's bar, fired (and delivered, within ALERT_DELIVERY_MAX_AGE of
    # the firing) on Monday.
    alert = AlertFactory(threshold=100.0)
    friday = datetime(2026, 6, 4, 18, 30, tzinfo=UTC)  # Friday 5 June, 00:00 IST
    quote = {"symbol": "TCS.NS", "price": 101.0, "change_percent": 1.0, "timestamp": friday.isoformat()}
    monday = datetime(2026, 6, 8, 2, 30, tzinfo=UTC)  # 08:00 IST
    with time_machine.travel(monday, tick=False), django_capture_on_commit_callbacks(execute=True):
        announce(QuoteRefreshed(symbol="TCS.NS", quote=quote))
    event = AlertEvent.objects.get(alert=alert)
    friday_ends = friday + timedelta(days=1)
    assert event.fired_at == monday and event.details["observed_at"] == friday_ends.isoformat()
    assert Alert.objects.get(pk=alert.pk).last_observed_at == friday_ends


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


# Monday 30 November 2026: providers quote the forming daily bar, stamped at its open (00:00 IST) all day.
MONDAY_BAR = datetime(2026, 11, 29, 18, 30, tzinfo=UTC)


def _quote_at(moment, price, django_capture_on_commit_callbacks):
    quote = {"symbol": "TCS.NS", "price": price, "change_percent": None, "timestamp": MONDAY_BAR.isoformat()}
    with time_machine.travel(moment, tick=False), django_capture_on_commit_callbacks(execute=True):
        announce(QuoteRefreshed(symbol="TCS.NS", quote=quote))


def test_live_quotes_are_evaluated_as_of_when_they_were_fetched_not_their_bars_open(
    django_capture_on_commit_callbacks,
):
    """Every live quote of a day carries the day's bar open as its timestamp: evaluated as of that, they were
    all "older" than the first intraday bar evaluated (skipped for the rest of the day), and a second crossing
    the same day had the first one's key (never notified)."""
    alert = AlertFactory(threshold=100.0, cooldown_minutes=5)
    minute = make_candles(
        1, start=MONDAY_BAR + timedelta(hours=4, minutes=45), step=timedelta(minutes=1)
    )  # 10:15 IST
    minute[["open", "high", "low", "close"]] = 99.0
    with django_capture_on_commit_callbacks(execute=True):
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.M1, candles=minute, source="test")
    ten_twenty = MONDAY_BAR + timedelta(hours=4, minutes=50)
    _quote_at(ten_twenty, 101.0, django_capture_on_commit_callbacks)  # crosses: fires
    _quote_at(ten_twenty + timedelta(minutes=1), 99.0, django_capture_on_commit_callbacks)  # back: re-armed
    _quote_at(ten_twenty + timedelta(minutes=10), 102.0, django_capture_on_commit_callbacks)  # crosses again
    assert list(AlertEvent.objects.filter(alert=alert).order_by("id").values_list("value", flat=True)) == [
        101.0,
        102.0,
    ]
    assert Alert.objects.get(pk=alert.pk).last_observed_at == ten_twenty + timedelta(minutes=10)


def test_a_forming_bar_evaluated_late_counts_as_of_when_it_was_fetched_not_when_its_task_runs(
    django_capture_on_commit_callbacks,
):
    """A forming bar's close is the price when it was fetched: its evaluation, queued behind others, ran "as of
    now", so a price fetched at 10:00 outranked a quote fetched at 10:03 and fired on the superseded price."""
    alert = AlertFactory(threshold=100.0, cooldown_minutes=0)
    ten = MONDAY_BAR + timedelta(hours=4, minutes=30)  # 10:00 IST, Monday's daily bar forming
    day = make_candles(1, start=MONDAY_BAR)
    day[["open", "high", "low", "close"]] = 105.0
    with time_machine.travel(ten, tick=False), django_capture_on_commit_callbacks(execute=False) as queued:
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=day, source="test")
    _quote_at(ten + timedelta(minutes=3), 95.0, django_capture_on_commit_callbacks)  # newer: below
    with (
        time_machine.travel(ten + timedelta(minutes=5), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        for callback in queued:  # the bar's announcement and evaluation, run late
            callback()
    assert not AlertEvent.objects.exists()
    stored = Alert.objects.get(pk=alert.pk)
    assert stored.last_value == 95.0 and stored.last_observed_at == ten + timedelta(minutes=3)
