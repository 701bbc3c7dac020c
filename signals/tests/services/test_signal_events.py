"""A generated signal is announced once: the live stream sends it once and alerts are evaluated once."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from market.services import candles_sync
from market.sources import get_provider
from market.tests.factories import InstrumentFactory
from market.timeframes import Timeframe
from signals.models import TradingSignal
from signals.services import signal_generate
from tradingdash import events

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 27, 11, 0, tzinfo=UTC)  # Friday, NSE closed for the day


@pytest.fixture
def announced(announcements):
    return announcements(events.SignalCreated)


@pytest.fixture
def tcs_history():
    """TCS.NS in the catalogue with 900 days of synthetic daily bars, as of NOW."""
    InstrumentFactory(symbol="TCS.NS")
    with time_machine.travel(NOW, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))


def test_a_generated_signal_is_announced_exactly_once(announced, tcs_history):
    with time_machine.travel(NOW, tick=False):
        signal = signal_generate(symbol="TCS.NS", timeframe=Timeframe.D1)
    assert [event.signal_id for event in announced] == [signal.pk]


def test_generating_again_on_the_same_closed_bar_stores_and_announces_nothing_new(announced, tcs_history):
    # A weekday holiday (no new bar since the last run), a retried task or a second POST: the rules see the same
    # closed bar, so it is the same signal, not a "new BUY signal" for every alert on the symbol.
    with time_machine.travel(NOW, tick=False):
        first = signal_generate(symbol="TCS.NS", timeframe=Timeframe.D1)
        again = signal_generate(symbol="TCS.NS", timeframe=Timeframe.D1)
    assert again.pk == first.pk
    assert TradingSignal.objects.filter(symbol="TCS.NS").count() == 1
    assert [event.signal_id for event in announced] == [first.pk]


def test_a_new_closed_bar_gives_a_new_signal(announced, tcs_history):
    with time_machine.travel(NOW, tick=False):
        first = signal_generate(symbol="TCS.NS", timeframe=Timeframe.D1)
    with time_machine.travel(NOW + timedelta(days=3), tick=False):  # Monday after the close
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=10, provider=get_provider("synthetic"))
        second = signal_generate(symbol="TCS.NS", timeframe=Timeframe.D1)
    assert second.candle_timestamp > first.candle_timestamp
    assert [event.signal_id for event in announced] == [first.pk, second.pk]


def test_the_scheduled_generation_delivered_twice_stores_and_announces_one_signal_per_bar(
    announced, tcs_history
):
    """Tasks are acked late: a worker lost mid-run (or a run outliving the broker's visibility timeout) has
    generate_for_watchlist delivered again. The second run must not store a second signal for the same closed
    bar, which would notify every signal alert's owner twice (alert events are keyed by signal)."""
    from market.models import Instrument
    from signals.tasks import generate_for_watchlist

    Instrument.objects.exclude(symbol="TCS.NS").update(active=False)
    with time_machine.travel(NOW, tick=False):
        first = generate_for_watchlist("1D")
        second = generate_for_watchlist("1D")
    assert TradingSignal.objects.filter(symbol="TCS.NS").count() == 1
    assert len(announced) == 1
    assert [g["signal_id"] for g in second["generated"]] == [g["signal_id"] for g in first["generated"]]


def test_the_generate_signals_command_run_twice_by_cron_keeps_one_signal_per_bar(announced, tcs_history):
    """The command is the scheduled run's twin "for shells and cron": a second run on the same closed bar
    stores and announces nothing new."""
    from io import StringIO

    from django.core.management import call_command

    with time_machine.travel(NOW, tick=False):
        for _ in range(2):
            call_command("generate_signals", "TCS", stdout=StringIO(), verbosity=0)
    assert TradingSignal.objects.filter(symbol="TCS.NS").count() == 1
    assert len(announced) == 1
