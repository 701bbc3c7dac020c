"""A sync that stores several bars at once (a backfill, the daily sync after a missed day, 5-minute bars fetched
an hour late) is evaluated bar by bar, oldest first: a crossing on a bar between the last one evaluated and the
newest is not missed, and each alert's crossing state machine runs over the bars as it would have live."""

from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from alerts.models import Alert, AlertDelivery, AlertEvent
from alerts.services import alert_update
from alerts.tasks import evaluate_candles
from alerts.tests.factories import AlertFactory
from market.tests.factories import MarketDataFactory

pytestmark = pytest.mark.django_db
# Wednesday 3 June 2026, 11:00 IST: 5-minute bars from there.
ELEVEN = datetime(2026, 6, 3, 5, 30, tzinfo=UTC)
FIVE = timedelta(minutes=5)
SET_BEFORE = ELEVEN - timedelta(days=1)  # the alerts were set the day before


def _bars(closes, *, start=ELEVEN, timeframe="5m", step=FIVE):
    """Final bars of `timeframe` closing at `closes`, the first opening at `start`; their ends."""
    ends = []
    for n, close in enumerate(closes):
        opened = start + n * step
        MarketDataFactory(
            timestamp=opened,
            timeframe=timeframe,
            open_price=close,
            high_price=close,
            low_price=close,
            close_price=close,
            final=True,
        )
        ends.append(opened + step)
    return ends


def _seen(closes, *, set_at=SET_BEFORE, **alert):
    """An alert that has evaluated a first bar (closing at closes[0]); the bars after it stored together."""
    alert = AlertFactory(threshold_set_at=set_at, **alert)
    _bars(closes[:1])
    assert evaluate_candles("TCS.NS", "5m") == []
    ends = _bars(closes[1:], start=ELEVEN + FIVE)
    return alert, ends


def _fired(alert):
    return list(
        AlertEvent.objects.filter(alert=alert).order_by("id").values_list("value", "details__observed_at")
    )


def test_a_crossing_on_a_bar_stored_with_a_newer_one_fires_once_as_of_that_bar():
    """95 seen; 105 and 98 stored together: only 98 (the newest) was evaluated, and the crossing was missed."""
    alert, ends = _seen([95.0, 105.0, 98.0], threshold=100.0, cooldown_minutes=0)
    assert len(evaluate_candles("TCS.NS", "5m")) == 1
    assert _fired(alert) == [(105.0, ends[0].isoformat())]
    stored = Alert.objects.get(pk=alert.pk)
    assert stored.armed and stored.last_value == 98.0 and stored.last_observed_at == ends[1]


@pytest.mark.parametrize(("cooldown", "fired"), [(0, [105.0, 102.0]), (60, [105.0])])
def test_crossing_back_and_again_in_one_batch_fires_per_crossing_out_of_the_cooldown(cooldown, fired):
    alert, _ = _seen([95.0, 105.0, 98.0, 102.0, 97.0], threshold=100.0, cooldown_minutes=cooldown)
    evaluate_candles("TCS.NS", "5m")
    assert [value for value, _ in _fired(alert)] == fired


def test_a_bar_observed_before_the_threshold_was_set_never_fires_it():
    """The user set 100 at 11:12, when the newest bar stored ended at 11:05 (evaluated then); the 11:05–11:10 bar
    at 105 arrives later with the 11:10–11:15 one: the user is not paged for a price from before they asked."""
    set_at = ELEVEN + timedelta(minutes=12)
    alert, _ = _seen([95.0, 105.0, 98.0], set_at=set_at, threshold=100.0, cooldown_minutes=0)
    # Another user's alert, set the day before, has seen the same first bar: the 105 bar is read for it.
    other = AlertFactory(threshold=100.0, threshold_set_at=SET_BEFORE, last_observed_at=ELEVEN + FIVE)
    assert len(evaluate_candles("TCS.NS", "5m")) == 1
    assert not AlertEvent.objects.filter(alert=alert).exists()
    assert AlertEvent.objects.get().alert_id == other.pk
    assert Alert.objects.get(pk=alert.pk).last_value == 98.0


def test_an_alert_that_never_observed_a_value_starts_from_the_newest_bar():
    alert = AlertFactory(threshold=100.0, threshold_set_at=SET_BEFORE, cooldown_minutes=0)
    _bars([95.0, 105.0, 98.0])
    assert evaluate_candles("TCS.NS", "5m") == []
    assert Alert.objects.get(pk=alert.pk).last_observed_at == ELEVEN + 3 * FIVE
    # Nor when another alert's catching up reads the bars before the newest.
    newer = AlertFactory(threshold=100.0, threshold_set_at=SET_BEFORE, cooldown_minutes=0)
    Alert.objects.filter(pk=alert.pk).update(last_observed_at=ELEVEN + FIVE)
    _bars([101.0], start=ELEVEN + 3 * FIVE)
    evaluate_candles("TCS.NS", "5m")
    fired = AlertEvent.objects.order_by("id").values_list("alert_id", "value")
    assert list(fired) == [(alert.pk, 105.0), (alert.pk, 101.0), (newer.pk, 101.0)]


def test_a_reactivated_alert_is_not_paged_for_the_bars_stored_while_it_was_off():
    alert, _ = _seen([95.0, 105.0, 98.0], threshold=100.0, cooldown_minutes=0)
    alert_update(alert=alert, active=False)
    alert_update(alert=Alert.objects.get(pk=alert.pk), active=True)
    assert evaluate_candles("TCS.NS", "5m") == []


def test_running_the_evaluation_twice_fires_and_delivers_once(django_capture_on_commit_callbacks):
    alert, ends = _seen([95.0, 105.0, 98.0], threshold=100.0, cooldown_minutes=0)
    with django_capture_on_commit_callbacks(execute=True):
        assert len(evaluate_candles.delay("TCS.NS", "5m").get()) == 1
        assert evaluate_candles.delay("TCS.NS", "5m").get() == []  # the task retried
    assert _fired(alert) == [(105.0, ends[0].isoformat())]
    assert AlertDelivery.objects.filter(event__alert=alert).count() == 1


def test_a_change_alert_crossing_on_a_middle_daily_bar_fires_with_that_days_change():
    day = timedelta(days=1)
    monday = datetime(2026, 6, 7, 18, 30, tzinfo=UTC)  # Monday 8 June, 00:00 IST
    alert = AlertFactory(kind="change_pct_above", threshold=3.0, threshold_set_at=SET_BEFORE)
    _bars([100.0, 100.5], start=monday, timeframe="1D", step=day)
    assert evaluate_candles("TCS.NS", "1D") == []  # Tuesday +0.5%
    ends = _bars([104.0, 104.5], start=monday + 2 * day, timeframe="1D", step=day)  # +3.48%, +0.48%
    assert len(evaluate_candles("TCS.NS", "1D")) == 1
    event = AlertEvent.objects.get(alert=alert)
    assert event.value == pytest.approx((104.0 / 100.5 - 1) * 100)
    assert event.details["observed_at"] == ends[0].isoformat() and event.details["price"] == 104.0


def test_the_bars_read_per_evaluation_are_capped_keeping_the_newest(settings):
    """A years-long backfill cannot make one evaluation run for minutes: the newest bars are kept, and the cut
    is logged."""
    settings.ALERT_EVALUATE_MAX_BARS = 3
    alert, ends = _seen([95.0, 105.0, 98.0, 102.0, 97.0], threshold=100.0, cooldown_minutes=0)
    with capture_logs() as logs:
        evaluate_candles("TCS.NS", "5m")
    assert _fired(alert) == [(102.0, ends[2].isoformat())]  # 105 was cut: 98, 102, 97 evaluated
    assert [log for log in logs if log["event"] == "alert_bars_capped"]


def test_the_bars_are_read_in_a_fixed_number_of_queries(django_assert_max_num_queries):
    from alerts.selectors import bars_to_evaluate

    alerts = [
        AlertFactory(threshold=threshold, threshold_set_at=SET_BEFORE, last_observed_at=ELEVEN)
        for threshold in (100.0, 101.0, 102.0)
    ]
    _bars([95.0 + n for n in range(40)])
    with django_assert_max_num_queries(5):
        bars = bars_to_evaluate(symbol="TCS.NS", timeframe="5m")
    assert len(bars) == 40 and alerts
    assert [bar.price for bar in bars] == sorted(bar.price for bar in bars)
