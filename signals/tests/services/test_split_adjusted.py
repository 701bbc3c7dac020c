"""Signals, backtests and training read the split-adjusted series: a split day is no 50% crash to them."""

from datetime import UTC, date, datetime

import pytest
import time_machine

from market.adjust import Action
from market.services import candles_sync
from market.tests.factories import FrameProvider, make_candles
from market.timeframes import Timeframe
from predictions.services import training_candles
from signals.services import _read_closed, signal_backtest

pytestmark = pytest.mark.django_db

# 300 daily bars from 1 Jan 2025 (IST); SPLIT.NS has the same walk with a 1:2 split going ex on its 200th bar.
CONTINUOUS = make_candles(300, start=datetime(2024, 12, 31, 18, 30, tzinfo=UTC), base=1000.0, seed=7)
SPLIT_AT = 200
SPLIT_DAY = date(2025, 7, 20)  # 1 Jan 2025 + 200 days
TRADED = CONTINUOUS.copy()
TRADED.iloc[:SPLIT_AT, :4] *= 2  # before the split each share was worth two of today's
TRADED.iloc[:SPLIT_AT, 4] = (TRADED["volume"].iloc[:SPLIT_AT] // 2).to_numpy()
NOW = datetime(2025, 10, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def stored(monkeypatch):
    provider = FrameProvider(
        {("CONT.NS", Timeframe.D1): CONTINUOUS, ("SPLIT.NS", Timeframe.D1): TRADED},
        actions={"SPLIT.NS": [Action(ex_date=SPLIT_DAY, kind="split", ratio=2.0)]},
    )
    monkeypatch.setattr("market.services.get_provider", lambda name=None: provider)
    with time_machine.travel(NOW, tick=False):
        for symbol in ("CONT.NS", "SPLIT.NS"):
            candles_sync(symbol=symbol, timeframe=Timeframe.D1, days=400, provider=provider)
        yield


def _drop_on_split_day(candles) -> float:
    return candles["close"].iloc[SPLIT_AT] / candles["close"].iloc[SPLIT_AT - 1]


def test_signals_read_the_split_adjusted_series(stored):
    candles = _read_closed(symbol="SPLIT.NS", timeframe=Timeframe.D1, limit=None)
    assert TRADED.index[SPLIT_AT].tz_convert("Asia/Kolkata").date() == SPLIT_DAY
    assert _drop_on_split_day(candles) == pytest.approx(_drop_on_split_day(CONTINUOUS))
    assert candles["close"].to_numpy() == pytest.approx(CONTINUOUS["close"].to_numpy())


def test_training_reads_the_split_adjusted_series(stored):
    candles = training_candles(symbol="SPLIT.NS", timeframe=Timeframe.D1, ensure=False)
    assert candles["close"].to_numpy() == pytest.approx(CONTINUOUS["close"].to_numpy())
    assert candles["volume"].iloc[0] == pytest.approx(CONTINUOUS["volume"].iloc[0], abs=1)


def test_a_backtest_across_a_split_replays_what_it_would_without_one_and_says_which_series(stored):
    split = signal_backtest(symbol="SPLIT.NS", timeframe=Timeframe.D1)
    continuous = signal_backtest(symbol="CONT.NS", timeframe=Timeframe.D1)
    assert split["series"] == continuous["series"] == "split-adjusted"
    assert split["buy_and_hold_return"] == pytest.approx(continuous["buy_and_hold_return"])
    assert split["total_return"] == pytest.approx(continuous["total_return"])
    assert len(split["trades"]) == len(continuous["trades"])
