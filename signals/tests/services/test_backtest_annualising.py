"""A backtest's Sharpe is annualised with the bars its symbol's exchange trades in a year, not NSE's."""

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
import time_machine

from market.services import candles_sync
from market.sources import calendar_for_symbol
from market.tests.factories import FrameProvider, make_candles
from market.timeframes import Timeframe
from signals.services import signal_backtest

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 12, 18, 0, tzinfo=UTC)  # Friday evening: every bar below has closed


def _session_bars(symbol: str, days: int) -> pd.DatetimeIndex:
    calendar = calendar_for_symbol(symbol)
    sessions = calendar.trading_days(date(2026, 5, 18), date(2026, 6, 12))[-days:]
    opens = [b for day in sessions for b in calendar.session_bars(day, timedelta(minutes=15))]
    return pd.DatetimeIndex(opens, name="timestamp").tz_convert(UTC).as_unit("us")


@pytest.mark.parametrize(("symbol", "per_session"), [("VOD.L", 34), ("AAPL", 26), ("TCS.NS", 25)])
def test_intraday_sharpe_is_annualised_with_the_exchanges_bars_per_session(symbol, per_session, monkeypatch):
    # 15-minute bars: LSE trades 08:00-16:30 (34 a session), NYSE 09:30-16:00 (26), NSE 09:15-15:30 (25).
    index = _session_bars(symbol, 10)
    assert len(index) == 10 * per_session
    candles = make_candles(len(index), base=200.0, seed=3)
    candles.index = index
    provider = FrameProvider({(symbol, Timeframe.M15): candles})
    monkeypatch.setattr("market.services.get_provider", lambda name=None: provider)
    with time_machine.travel(NOW, tick=False):
        candles_sync(symbol=symbol, timeframe=Timeframe.M15, days=30, provider=provider)
        body = signal_backtest(symbol=symbol, timeframe=Timeframe.M15)
    assert body["periods_per_year"] == 252 * per_session
