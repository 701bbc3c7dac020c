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


def test_a_generated_signal_is_announced_exactly_once(announced):
    InstrumentFactory(symbol="TCS.NS")
    with time_machine.travel(NOW, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
        signal = signal_generate(symbol="TCS.NS", timeframe=Timeframe.D1)
    assert [event.signal_id for event in announced] == [signal.pk]


def test_generating_again_on_the_same_closed_bar_stores_and_announces_nothing_new(announced):
    # A weekday holiday (no new bar since the last run), a retried task or a second POST: the rules see the same
    # closed bar, so it is the same signal, not a "new BUY signal" for every alert on the symbol.
    InstrumentFactory(symbol="TCS.NS")
    with time_machine.travel(NOW, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
        first = signal_generate(symbol="TCS.NS", timeframe=Timeframe.D1)
        again = signal_generate(symbol="TCS.NS", timeframe=Timeframe.D1)
    assert again.pk == first.pk
    assert TradingSignal.objects.filter(symbol="TCS.NS").count() == 1
    assert [event.signal_id for event in announced] == [first.pk]


def test_a_new_closed_bar_gives_a_new_signal(announced):
    InstrumentFactory(symbol="TCS.NS")
    with time_machine.travel(NOW, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
        first = signal_generate(symbol="TCS.NS", timeframe=Timeframe.D1)
    with time_machine.travel(NOW + timedelta(days=3), tick=False):  # Monday after the close
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=10, provider=get_provider("synthetic"))
        second = signal_generate(symbol="TCS.NS", timeframe=Timeframe.D1)
    assert second.candle_timestamp > first.candle_timestamp
    assert [event.signal_id for event in announced] == [first.pk, second.pk]
