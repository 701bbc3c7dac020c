"""Signals and backtests read final candles only: a bar stored half-way is never taken for a closed one."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from market.providers.errors import ProviderUnavailable
from market.services import StaleMarketData, candles_sync
from market.tests.factories import FrameProvider, make_candles
from market.timeframes import Timeframe
from signals.services import _read_closed, signal_generate

pytestmark = pytest.mark.django_db

# NSE 1H bars of Wednesday 2026-06-03, 09:15 ... 15:15 IST; the 15:15 bar is fetched at 15:25 IST.
HOURLY = make_candles(7, start=datetime(2026, 6, 3, 3, 45, tzinfo=UTC), step=timedelta(hours=1))


def test_partial_bar_is_left_out_even_after_its_close(monkeypatch):
    provider = FrameProvider({("ODD.NS", Timeframe.H1): HOURLY})
    monkeypatch.setattr("market.services.get_provider", lambda name=None: provider)  # the configured one
    with time_machine.travel(datetime(2026, 6, 3, 9, 55, tzinfo=UTC), tick=False):
        candles_sync(symbol="ODD.NS", timeframe=Timeframe.H1, days=1, provider=provider)
    # 15:31 IST: the bar has closed, but what is stored is its 15:25 snapshot (the provider is down, so the
    # read cannot fetch it complete).
    provider.fail = ProviderUnavailable("Yahoo Finance did not answer")
    with time_machine.travel(datetime(2026, 6, 3, 10, 1, tzinfo=UTC), tick=False):
        candles = _read_closed(symbol="ODD.NS", timeframe=Timeframe.H1, limit=None)
        # Nor is a signal made on the bar before it, as if that were the latest.
        with pytest.raises(StaleMarketData, match="the bar of 2026-06-03 14:15 IST"):
            signal_generate(symbol="ODD.NS", timeframe=Timeframe.H1)
    assert candles.index[-1] == HOURLY.index[-2]
    # Once fetched complete (the 15:35 IST sync), it is used.
    provider.fail = None
    with time_machine.travel(datetime(2026, 6, 3, 10, 5, tzinfo=UTC), tick=False):
        candles_sync(symbol="ODD.NS", timeframe=Timeframe.H1, days=1, provider=provider)
        candles = _read_closed(symbol="ODD.NS", timeframe=Timeframe.H1, limit=None)
    assert candles.index[-1] == HOURLY.index[-1]


def test_a_split_announced_for_a_later_day_leaves_the_signal_in_the_last_bars_prices():
    from datetime import date

    from market.models import CorporateAction, MarketData
    from market.services import market_reads_invalidate
    from market.sources import get_provider
    from signals.services import signal_generate

    with time_machine.travel(datetime(2026, 6, 4, 6, 30, tzinfo=UTC), tick=False):  # 12:00 IST, bar forming
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
        CorporateAction.objects.create(symbol="TCS.NS", ex_date=date(2026, 6, 15), kind="split", ratio=2.0)
        market_reads_invalidate(symbol="TCS.NS")
        signal = signal_generate(symbol="TCS.NS", timeframe=Timeframe.D1)
    traded = MarketData.objects.get(symbol="TCS.NS", timeframe="1D", timestamp=signal.candle_timestamp)
    assert signal.entry_price == pytest.approx(traded.close_price)
