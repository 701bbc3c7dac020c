"""The alert state machine against the database, and the data events that drive it."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from alerts.models import Alert, AlertDelivery, AlertEvent
from alerts.services import alerts_evaluate_price
from alerts.tasks import evaluate_prediction, evaluate_signal
from alerts.tests.factories import AlertFactory, ChannelFactory
from market.models import CorporateAction
from market.services import candles_upsert
from market.tests.factories import make_candles
from market.timeframes import Timeframe
from predictions.tests.factories import PredictionFactory
from signals.models import TradingSignal
from signals.tests.factories import TradingSignalFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 3, 6, 30, tzinfo=UTC)


def price(alert, value, *, at):
    return alerts_evaluate_price(symbol=alert.symbol, price=value, change_pct=None, observed_at=at)


def test_price_alert_fires_once_per_crossing_rearms_and_respects_cooldown(django_capture_on_commit_callbacks):
    alert = AlertFactory(threshold=100.0, cooldown_minutes=30)
    with django_capture_on_commit_callbacks(execute=True):
        assert price(alert, 99.0, at=NOW) == []
        first = price(alert, 100.5, at=NOW + timedelta(minutes=1))
        assert len(first) == 1
        assert price(alert, 102.0, at=NOW + timedelta(minutes=2)) == []  # still above: same crossing
        assert price(alert, 99.0, at=NOW + timedelta(minutes=3)) == []  # back across: re-armed
        assert price(alert, 101.0, at=NOW + timedelta(minutes=4)) == []  # crossing within the cooldown
        assert price(alert, 98.0, at=NOW + timedelta(minutes=40)) == []
        second = price(alert, 101.0, at=NOW + timedelta(minutes=41))
    assert len(second) == 1
    alert.refresh_from_db()
    assert alert.last_fired_at == NOW + timedelta(minutes=41) and not alert.armed
    events = list(AlertEvent.objects.order_by("fired_at"))
    assert [e.value for e in events] == [100.5, 101.0]
    assert "above 100" in events[0].message
    # The stream channel published each firing (no layer configured here: published to nobody, delivered).
    assert list(AlertDelivery.objects.values_list("channel_kind", "state")) == [("stream", "delivered")] * 2


def test_change_alerts_use_the_change_against_previous_close():
    alert = AlertFactory(kind="change_pct_below", threshold=-2.0)
    assert alerts_evaluate_price(symbol="TCS.NS", price=100.0, change_pct=-1.0) == []
    assert len(alerts_evaluate_price(symbol="TCS.NS", price=97.0, change_pct=-3.0)) == 1
    assert AlertEvent.objects.get(alert=alert).value == -3.0


def test_inactive_alerts_and_other_symbols_never_fire():
    AlertFactory(active=False)
    AlertFactory(symbol="INFY.NS")
    assert alerts_evaluate_price(symbol="TCS.NS", price=150.0, change_pct=None) == []
    assert not AlertEvent.objects.exists()


def test_editing_the_threshold_rearms():
    alert = AlertFactory(threshold=100.0)
    price(alert, 101.0, at=NOW)
    from alerts.services import alert_update

    alert_update(alert=Alert.objects.get(pk=alert.pk), threshold=110.0)
    assert Alert.objects.get(pk=alert.pk).armed


def _signal(signal_type="BUY"):
    return TradingSignalFactory(signal_type=signal_type, candle_timestamp=NOW)


def test_a_retried_signal_evaluation_fires_and_notifies_once(
    django_capture_on_commit_callbacks, receiver, allow_private
):
    alert = AlertFactory(
        kind="signal", threshold=None, signal_type="BUY", channels=["webhook"], cooldown_minutes=0
    )
    ChannelFactory(user=alert.user, url=receiver.url)
    AlertFactory(kind="signal", threshold=None, signal_type="SELL", user=alert.user)
    signal = _signal("BUY")
    with django_capture_on_commit_callbacks(execute=True):
        assert len(evaluate_signal.delay(signal.pk).get()) == 1
        assert evaluate_signal.delay(signal.pk).get() == []  # the task retried: same key, nothing new
    assert AlertEvent.objects.count() == 1
    assert len(receiver.requests) == 1
    assert AlertDelivery.objects.get().state == "delivered"


def test_a_signal_made_on_synthetic_candles_says_so_in_its_alert():
    """The message is all a notification channel shows: a BUY on demo data must not read as one on the market."""
    alert = AlertFactory(kind="signal", threshold=None, signal_type="BUY")
    candles = make_candles(1, start=NOW)
    candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=candles, source="synthetic")
    evaluate_signal.delay(_signal("BUY").pk).get()
    event = AlertEvent.objects.get(alert=alert)
    assert event.message.endswith("(synthetic data, not market prices)")
    assert event.details["source"] == "synthetic"


def test_prediction_miss_fires_only_outside_the_interval():
    alert = AlertFactory(kind="prediction_miss", threshold=None)
    common = {"predicted_price": 100.0, "lower_bound": 95.0, "upper_bound": 105.0, "base_timestamp": NOW}
    inside = PredictionFactory(**common, realized_price=104.0)
    outside = PredictionFactory(**common, realized_price=90.0)
    unscored = PredictionFactory(**common)
    assert evaluate_prediction.delay(inside.pk).get() == []
    assert evaluate_prediction.delay(unscored.pk).get() == []
    assert len(evaluate_prediction.delay(outside.pk).get()) == 1
    event = AlertEvent.objects.get(alert=alert)
    assert event.value == 90.0 and event.details["prediction_id"] == outside.pk


def test_stored_candles_evaluate_price_alerts_after_commit(django_capture_on_commit_callbacks):
    candles = make_candles(5, start=datetime(2026, 5, 25, 18, 30, tzinfo=UTC))
    last_close = float(candles["close"].iloc[-1])
    alert = AlertFactory(threshold=last_close - 0.01)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=candles, source="test")
    assert callbacks  # evaluation was enqueued after commit, not run inside the write
    event = AlertEvent.objects.get(alert=alert)
    assert event.value == pytest.approx(last_close)
    expected_change = (last_close / float(candles["close"].iloc[-2]) - 1) * 100
    assert event.details["change_pct"] == pytest.approx(expected_change)


def test_nothing_is_evaluated_when_the_write_rolls_back(django_capture_on_commit_callbacks):
    AlertFactory(threshold=1.0)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=make_candles(3), source="test")
    assert callbacks and not AlertEvent.objects.exists()


def test_a_generated_signal_and_a_scored_prediction_announce_themselves(django_capture_on_commit_callbacks):
    from market.services import candles_sync
    from market.sources import get_provider
    from predictions.services import predictions_score
    from signals.services import signal_generate

    with time_machine.travel(NOW, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
        # Generating again on the same bar is the same signal, announced once: the alert exists beforehand,
        # for whichever type the signal turns out to be.
        for signal_type in ("BUY", "SELL", "HOLD"):
            AlertFactory(kind="signal", threshold=None, signal_type=signal_type)
        AlertFactory(kind="prediction_miss", threshold=None)
        with django_capture_on_commit_callbacks(execute=True):
            signal = signal_generate(symbol="TCS.NS", timeframe=Timeframe.D1)
            bar = TradingSignal.objects.get(pk=signal.pk).candle_timestamp
            PredictionFactory(
                predicted_price=1.0,
                lower_bound=0.5,
                upper_bound=1.5,
                base_price=1.0,
                base_timestamp=bar - timedelta(days=1),
                target_time=bar,
            )
            assert predictions_score() == 1
    assert set(AlertEvent.objects.values_list("kind", flat=True)) == {"signal", "prediction_miss"}


def test_a_fresh_quote_evaluates_price_alerts(django_capture_on_commit_callbacks):
    from market.selectors import quote_get
    from market.tests.factories import FrameProvider

    candles = make_candles(10, start=NOW - timedelta(days=10))
    provider = FrameProvider({("TCS.NS", Timeframe.D1): candles})
    alert = AlertFactory(kind="change_pct_above", threshold=-100.0)
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        quote = quote_get(symbol="TCS.NS", provider=provider)
        quote_get(symbol="TCS.NS", provider=provider)  # cached: not a refresh, nothing announced
    event = AlertEvent.objects.get(alert=alert)
    assert event.value == pytest.approx(quote["change_percent"])
    assert event.details["price"] == pytest.approx(quote["price"])


def test_data_without_alerts_enqueues_nothing(django_capture_on_commit_callbacks):
    AlertFactory(symbol="INFY.NS")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=make_candles(3), source="test")
    # Market's own announcement (after commit) and the live stream's candle message; alerts, with no alert on
    # TCS, enqueued nothing.
    assert not [callback for callback in callbacks if callback.__module__.startswith("alerts")]


def test_a_split_between_the_previous_close_and_now_fires_no_change_alert(django_capture_on_commit_callbacks):
    # 1 June 2026 (IST) closes at 200; the 1:2 split goes ex on 2 June, which trades at 101: +1%, not -49.5%.
    candles = make_candles(2, start=datetime(2026, 5, 31, 18, 30, tzinfo=UTC), base=200.0)
    candles.iloc[1, :4] = [100.0, 102.0, 99.0, 101.0]
    candles.iloc[0, :4] = [200.0, 201.0, 198.0, 200.0]
    CorporateAction.objects.create(
        symbol="TCS.NS", ex_date=date(2026, 6, 2), kind="split", ratio=2.0, source="csv"
    )
    crash = AlertFactory(kind="change_pct_below", threshold=-10.0)
    rise = AlertFactory(kind="change_pct_above", threshold=0.5)
    with django_capture_on_commit_callbacks(execute=True):
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=candles, source="test")
    assert not AlertEvent.objects.filter(alert=crash).exists()
    assert AlertEvent.objects.get(alert=rise).details["change_pct"] == pytest.approx(1.0)


def test_a_firing_says_where_its_value_came_from_and_whether_its_bar_was_final(
    django_capture_on_commit_callbacks,
):
    """A notification of a synthetic (demo) price read exactly like one of the market's, and one of a forming
    bar like one of a closed bar: the details said neither, and the message (all Apprise shows) nothing."""
    from tradingdash.events import QuoteRefreshed, announce

    alert = AlertFactory(threshold=100.0, cooldown_minutes=0)
    monday = datetime(2026, 11, 29, 18, 30, tzinfo=UTC)  # Monday 30 November, 00:00 IST
    bar = make_candles(1, start=monday)
    bar[["open", "high", "low", "close"]] = 101.0
    with time_machine.travel(monday + timedelta(hours=5), tick=False):  # 10:30 IST: the day's bar forming
        with django_capture_on_commit_callbacks(execute=True):
            candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=bar, source="synthetic")
        event = AlertEvent.objects.get(alert=alert)
        assert (event.details["source"], event.details["final"]) == ("synthetic", False)
        assert event.message == "TCS.NS: price 101.00 is above 100 (synthetic data, not market prices)"
        Alert.objects.filter(pk=alert.pk).update(armed=True)  # a new crossing, fetched a minute later
    quote = {"price": 102.0, "change_percent": 1.0, "timestamp": monday.isoformat(), "source": "yfinance"}
    later = monday + timedelta(hours=5, minutes=1)
    with time_machine.travel(later, tick=False), django_capture_on_commit_callbacks(execute=True):
        announce(QuoteRefreshed(symbol="TCS.NS", quote=quote))
    second = AlertEvent.objects.filter(alert=alert).order_by("id").last()
    assert (second.details["source"], second.details["final"]) == ("yfinance", None)
    assert second.message == "TCS.NS: price 102.00 is above 100"


def test_an_evaluation_that_meets_a_passing_database_failure_is_retried_not_dropped(monkeypatch):
    """The value a quote evaluation carried was evaluated by nobody when the database dropped the connection
    once (a restart): a crossing it held was missed for good. The task retries, and fires once."""
    from django.db import OperationalError

    from alerts import tasks

    alert = AlertFactory(threshold=100.0)
    failures = [OperationalError("server closed the connection unexpectedly")]
    evaluate = tasks.alerts_evaluate_price

    def flaky(**kwargs):
        if failures:
            raise failures.pop()
        return evaluate(**kwargs)

    monkeypatch.setattr(tasks, "alerts_evaluate_price", flaky)
    observed = datetime(2026, 6, 5, 6, 30, tzinfo=UTC).isoformat()
    result = tasks.evaluate_quote.apply(args=("TCS.NS", 106.0, None, observed)).get()
    assert failures == []  # it failed once
    assert len(result) == 1
    assert list(AlertEvent.objects.filter(alert=alert).values_list("threshold", flat=True)) == [100.0]
