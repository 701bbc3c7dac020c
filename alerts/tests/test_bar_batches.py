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


# --- Found by review (30 Nov 2026): who was watching, superseded quotes, a new alert, queries with Redis down

DAY = timedelta(days=1)
MONDAY = datetime(2026, 6, 7, 18, 30, tzinfo=UTC)  # Monday 8 June, 00:00 IST


def test_a_reactivated_user_is_not_paged_for_the_crossings_while_they_were_inactive(rf):
    """The user was inactive for two weeks, their alert seen one bar before; bars of those weeks stored later fired
    five crossings at once when the user was back (evaluation skips an inactive user's alerts, so nothing moved)."""
    from types import SimpleNamespace

    from django.contrib.admin.sites import site

    from accounts.admin import UserAdmin

    alert = AlertFactory(threshold=100.0, threshold_set_at=SET_BEFORE, cooldown_minutes=60)
    _bars([95.0], start=MONDAY, timeframe="1D", step=DAY)
    evaluate_candles("TCS.NS", "1D")
    user = alert.user
    user.is_active = False
    user.save()
    _bars(
        [105.0, 95.0, 106.0, 94.0, 107.0, 93.0, 108.0, 92.0, 109.0, 91.0],
        start=MONDAY + DAY,
        timeframe="1D",
        step=DAY,
    )
    assert evaluate_candles("TCS.NS", "1D") == []  # inactive: nothing
    user.is_active = True  # staff, in the admin
    UserAdmin(type(user), site).save_model(
        rf.post("/"), user, SimpleNamespace(changed_data=["is_active"]), True
    )
    _bars([90.0], start=MONDAY + 11 * DAY, timeframe="1D", step=DAY)
    assert evaluate_candles("TCS.NS", "1D") == []
    assert not AlertEvent.objects.exists()


def test_a_quote_older_than_the_newest_seen_is_superseded_after_an_edit_too():
    """An edit that re-arms cleared the newest time seen: a quote delivered late, older than the one already
    evaluated, then fired the new condition although the price had moved back since."""
    from alerts.services import alerts_evaluate_price

    ten = datetime(2026, 6, 3, 4, 30, tzinfo=UTC)
    alert = AlertFactory(threshold=110.0, threshold_set_at=SET_BEFORE, cooldown_minutes=0)
    alerts_evaluate_price(
        symbol="TCS.NS", price=95.0, change_pct=None, observed_at=ten + timedelta(minutes=1)
    )
    alert_update(alert=alert, threshold=100.0)
    assert alerts_evaluate_price(symbol="TCS.NS", price=105.0, change_pct=None, observed_at=ten) == []
    assert Alert.objects.get(pk=alert.pk).last_observed_at == ten + timedelta(minutes=1)


def test_a_reactivated_alert_does_not_catch_up_on_bars_observed_while_it_was_off():
    alert = AlertFactory(threshold=100.0, threshold_set_at=SET_BEFORE, cooldown_minutes=0)
    _bars([95.0])
    evaluate_candles("TCS.NS", "5m")
    alert_update(alert=alert, active=False)
    alert_update(alert=Alert.objects.get(pk=alert.pk), active=True)
    evaluate_candles("TCS.NS", "5m")  # a re-sync of the same bar
    _bars([105.0, 98.0], start=ELEVEN + FIVE)  # bars of the time it was off, stored late
    assert evaluate_candles("TCS.NS", "5m") == []


def test_a_new_alert_is_evaluated_on_the_newest_bar_when_another_has_seen_past_it():
    """Another alert had seen a live quote after the newest (lagging) hourly bar: no bar was read at all, and the
    new alert was evaluated on nothing."""
    ahead = AlertFactory(threshold=200.0, threshold_set_at=SET_BEFORE)
    new = AlertFactory(threshold=100.0, threshold_set_at=SET_BEFORE)
    Alert.objects.filter(pk=ahead.pk).update(last_observed_at=ELEVEN + timedelta(hours=3))
    _bars([105.0], timeframe="1H", step=timedelta(hours=1))
    assert len(evaluate_candles("TCS.NS", "1H")) == 1
    assert _fired(new) == [(105.0, (ELEVEN + timedelta(hours=1)).isoformat())]


def test_the_evaluation_reads_the_splits_once_however_many_bars_and_alerts_while_redis_is_down(
    dead_cache, django_assert_max_num_queries
):
    """threshold_split_ratio read the symbol's splits for every bar of every price alert: uncached while Redis
    is down, 278 queries for 50 bars and 5 alerts."""
    from datetime import date

    from market.models import CorporateAction

    CorporateAction.objects.create(symbol="TCS.NS", ex_date=date(2020, 1, 1), kind="split", ratio=2)
    for n in range(5):
        AlertFactory(threshold=1000.0 + n, threshold_set_at=SET_BEFORE, last_observed_at=ELEVEN)
    _bars([95.0 + n * 0.01 for n in range(50)])
    with django_assert_max_num_queries(60):
        evaluate_candles("TCS.NS", "5m")


def test_an_alert_moved_to_another_symbol_is_evaluated_on_that_symbols_newest_value():
    """The newest time seen was the old symbol's (another exchange, later in the day): the new symbol's newest
    quote, older than it, was skipped as superseded, and the alert said nothing until the next session."""
    from alerts.services import alerts_evaluate_price

    evening = datetime(2026, 6, 3, 19, tzinfo=UTC)
    alert = AlertFactory(symbol="AAPL", threshold=100.0, threshold_set_at=SET_BEFORE, cooldown_minutes=0)
    alerts_evaluate_price(symbol="AAPL", price=95.0, change_pct=None, observed_at=evening)
    alert_update(alert=alert, symbol="TCS.NS")
    fired = alerts_evaluate_price(
        symbol="TCS.NS", price=105.0, change_pct=None, observed_at=evening - timedelta(hours=1)
    )
    assert len(fired) == 1 and _fired(alert) == [(105.0, (evening - timedelta(hours=1)).isoformat())]
