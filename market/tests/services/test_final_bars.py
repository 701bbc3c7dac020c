"""Partial bars are stored non-final and completed by a later fetch; the csv provider stamps US data in New York."""

import importlib
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pandas as pd
import pytest
import time_machine
from django.apps import apps
from django.db import connection
from django.utils import timezone

from market.models import CoverageInterval, MarketData
from market.selectors import _history_candles_json, candles_frame
from market.services import candles_sync, candles_upsert, sync_batch_run, sync_run_plan
from market.sources import get_provider
from market.tests.factories import FrameProvider, InstrumentFactory, MarketDataFactory, make_candles
from market.timeframes import Timeframe
from tradingdash.events import CandlesStored, subscribe, unsubscribe

pytestmark = pytest.mark.django_db

# Wednesday 2026-06-03 on NSE: 1H bars open 09:15 ... 15:15 IST (03:45 ... 09:45 UTC); the session closes 15:30.
HOURLY = make_candles(7, start=datetime(2026, 6, 3, 3, 45, tzinfo=UTC), step=timedelta(hours=1))
AT_1525_IST = datetime(2026, 6, 3, 9, 55, tzinfo=UTC)  # the last intraday sync of the session
AT_1535_IST = datetime(2026, 6, 3, 10, 5, tzinfo=UTC)  # just after the close


def _final_flags(symbol="TCS.NS", timeframe="1H"):
    return list(
        MarketData.objects.filter(symbol=symbol, timeframe=timeframe)
        .order_by("timestamp")
        .values_list("final", flat=True)
    )


def test_bar_fetched_before_its_close_is_stored_non_final_and_completed_later():
    forming = HOURLY.copy()
    forming.iloc[-1, forming.columns.get_loc("close")] = forming["open"].iloc[-1]
    forming.iloc[-1, forming.columns.get_loc("high")] = forming[["open", "high"]].iloc[-1].max()
    with time_machine.travel(AT_1525_IST, tick=False):
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.H1, candles=forming, source="frame")
    assert _final_flags() == [True] * 6 + [False]  # the 15:15 bar was ten minutes into its fifteen

    with time_machine.travel(AT_1535_IST, tick=False):
        result = candles_upsert(symbol="TCS.NS", timeframe=Timeframe.H1, candles=HOURLY, source="frame")
    assert (result.updated, result.unchanged) == (1, 6)  # only the bar that was forming changed
    assert _final_flags() == [True] * 7
    last = MarketData.objects.get(timeframe="1H", timestamp=HOURLY.index[-1].to_pydatetime())
    assert last.close_price == pytest.approx(HOURLY["close"].iloc[-1])


def test_daily_bar_fetched_during_the_session_is_not_final():
    daily = make_candles(3, start=datetime(2026, 6, 1, 18, 30, tzinfo=UTC))  # Tue, Wed, Thu IST midnights
    with time_machine.travel(datetime(2026, 6, 3, 6, 0, tzinfo=UTC), tick=False):  # Wednesday 11:30 IST
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=daily.iloc[:2], source="frame")
    assert _final_flags(timeframe="1D") == [True, False]


def test_final_only_reads_leave_partial_bars_out():
    with time_machine.travel(AT_1525_IST, tick=False):
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.H1, candles=HOURLY, source="frame")
    assert len(candles_frame(symbol="TCS.NS", timeframe=Timeframe.H1)) == 7
    final = candles_frame(symbol="TCS.NS", timeframe=Timeframe.H1, final_only=True)
    assert final.index[-1] == HOURLY.index[-2]


def test_a_final_bar_stays_final_when_written_again():
    with time_machine.travel(AT_1535_IST, tick=False):
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.H1, candles=HOURLY, source="frame")
    with time_machine.travel(AT_1525_IST, tick=False):  # a clock that went backwards changes nothing
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.H1, candles=HOURLY, source="frame")
    assert _final_flags() == [True] * 7


def test_stored_candles_are_announced_after_commit(django_capture_on_commit_callbacks):
    seen = []
    subscribe(CandlesStored, seen.append)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            with time_machine.travel(AT_1535_IST, tick=False):
                candles_upsert(symbol="TCS.NS", timeframe=Timeframe.H1, candles=HOURLY, source="frame")
            assert seen == []  # not before the commit
    finally:
        unsubscribe(CandlesStored, seen.append)
    assert seen == [
        CandlesStored(
            symbol="TCS.NS",
            timeframe="1H",
            first=HOURLY.index[0].to_pydatetime(),
            last=HOURLY.index[-1].to_pydatetime(),
            inserted=7,
            updated=0,
            source="frame",
            written=tuple(HOURLY.index.to_pydatetime()),
        )
    ]


@pytest.mark.parametrize("vendor", ["postgresql", "sqlite"])
def test_history_reports_final_per_candle(monkeypatch, vendor):
    with time_machine.travel(AT_1525_IST, tick=False):
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.H1, candles=HOURLY, source="frame")
    monkeypatch.setattr(connection, "vendor", vendor)
    _, candles, _ = _history_candles_json(
        symbol="TCS.NS", timeframe=Timeframe.H1, start=None, end=None, limit=10
    )
    assert [candle["final"] for candle in json.loads(candles)] == [True] * 6 + [False]


@pytest.mark.parametrize("vendor", ["postgresql", "sqlite"])
def test_migration_marks_existing_rows_final_only_where_provable(monkeypatch, vendor):
    migration = importlib.import_module("market.migrations.0003_marketdata_final")
    rows = {
        # NSE 15:15 1H bar written at 15:25 IST (partial) and at 15:35 IST (complete).
        ("TCS.NS", "1H", datetime(2026, 6, 3, 9, 45, tzinfo=UTC), AT_1525_IST): False,
        ("INFY.NS", "1H", datetime(2026, 6, 3, 9, 45, tzinfo=UTC), AT_1535_IST): True,
        # ^GSPC (no catalogue row: NYSE by name) daily bar, written at 15:00 and at 16:30 New York.
        (
            "^GSPC",
            "1D",
            datetime(2018, 12, 31, 5, 0, tzinfo=UTC),
            datetime(2018, 12, 31, 20, 0, tzinfo=UTC),
        ): False,
        (
            "^DJI",
            "1D",
            datetime(2018, 12, 31, 5, 0, tzinfo=UTC),
            datetime(2018, 12, 31, 21, 30, tzinfo=UTC),
        ): True,
        # A weekly NSE bar of the week of Monday 2026-06-01, written on Friday at noon and on Saturday.
        (
            "TCS.NS",
            "1W",
            datetime(2026, 5, 31, 18, 30, tzinfo=UTC),
            datetime(2026, 6, 5, 6, 30, tzinfo=UTC),
        ): False,
        (
            "INFY.NS",
            "1W",
            datetime(2026, 5, 31, 18, 30, tzinfo=UTC),
            datetime(2026, 6, 6, 6, 30, tzinfo=UTC),
        ): True,
    }
    for symbol, timeframe, timestamp, updated_at in rows:
        MarketDataFactory(
            symbol=symbol,
            timeframe=timeframe,
            timestamp=timestamp,
            final=not rows[(symbol, timeframe, timestamp, updated_at)],
        )
        MarketData.objects.filter(symbol=symbol, timeframe=timeframe).update(updated_at=updated_at)
    monkeypatch.setattr(connection, "vendor", vendor)
    migration.mark_final(apps, SimpleNamespace(connection=connection))
    monkeypatch.undo()
    stored = {
        (symbol, timeframe): final
        for symbol, timeframe, final in MarketData.objects.values_list("symbol", "timeframe", "final")
    }
    assert stored == {(symbol, timeframe): final for (symbol, timeframe, _, _), final in rows.items()}


def test_csv_us_dates_are_stamped_in_new_york_and_final_after_the_nyse_close(tmp_path, settings, monkeypatch):
    InstrumentFactory(symbol="^GSPC", exchange="NYSE", currency="USD", kind="index")
    (tmp_path / "^GSPC_1D.csv").write_text(
        "Date,Open,High,Low,Close,Volume\n"
        "2018-12-31,2498.9,2509.2,2482.8,2506.9,0\n"
        "2019-01-02,2476.9,2519.5,2467.5,2510.0,0\n"
        "2019-01-03,2491.9,2493.1,2443.9,2447.9,0\n"
    )
    settings.MARKET_DATA_CSV_DIR = tmp_path
    monkeypatch.setattr("market.sources._providers", {})
    provider = get_provider("csv")
    # 13:00 in New York on 2019-01-03: that day's session is still running.
    with time_machine.travel(datetime(2019, 1, 3, 18, 0, tzinfo=UTC), tick=False):
        candles_sync(symbol="^GSPC", timeframe=Timeframe.D1, days=10, provider=provider)
    stored = list(MarketData.objects.order_by("timestamp").values_list("timestamp", "final"))
    assert stored == [
        (datetime(2018, 12, 31, 5, 0, tzinfo=UTC), True),
        (datetime(2019, 1, 2, 5, 0, tzinfo=UTC), True),
        (datetime(2019, 1, 3, 5, 0, tzinfo=UTC), False),
    ]
    assert pd.Timestamp(stored[1][0]).tz_convert("America/New_York").hour == 0


class SlowFrameProvider(FrameProvider):
    """Yahoo answering as the bars stood when asked, its answer arriving `delay` later (network and parsing)."""

    def __init__(self, frames, traveller, delay=timedelta(seconds=3)):
        super().__init__(frames)
        self.traveller, self.delay = traveller, delay

    def fetch_candles(self, symbol, timeframe, *, start=None, end=None):
        frame = super().fetch_candles(symbol, timeframe, start=start, end=end)
        self.traveller.shift(self.delay)
        return frame


# 5m bars of Wednesday 2026-06-03 from 15:00 IST; the last, 15:25, closes with the session at 15:30 IST.
FIVE_MINUTES = make_candles(6, start=datetime(2026, 6, 3, 9, 30, tzinfo=UTC), step=timedelta(minutes=5))
AT_152958_IST = datetime(2026, 6, 3, 9, 59, 58, tzinfo=UTC)


def test_bar_forming_when_fetched_is_not_final_though_stored_after_its_close():
    with time_machine.travel(AT_152958_IST, tick=False) as traveller:
        provider = SlowFrameProvider({("TCS.NS", Timeframe.M5): FIVE_MINUTES}, traveller)
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.M5, days=1, provider=provider)
        assert timezone.now() > datetime(2026, 6, 3, 10, 0, tzinfo=UTC)  # stored after the 15:30 close
    assert _final_flags(timeframe="5m") == [True] * 5 + [False]
    series = CoverageInterval.objects.get(series__symbol="TCS.NS", series__timeframe="5m")
    assert series.last_synced_at == AT_152958_IST  # as of the request, not of the store


def test_a_batch_sync_judges_final_when_the_download_began(monkeypatch):
    # Planned and started at 15:29:58; the many-ticker download takes 10 seconds.
    with time_machine.travel(AT_152958_IST, tick=False) as traveller:
        provider = SlowFrameProvider(
            {("TCS.NS", Timeframe.M5): FIVE_MINUTES}, traveller, delay=timedelta(seconds=10)
        )
        monkeypatch.setattr("market.services.get_provider", lambda name=None: provider)
        run = sync_run_plan(timeframe=Timeframe.M5, symbols=["TCS.NS"], days=1, provider_name="frame")
        for batch in run.batches.all():
            sync_batch_run(batch_id=batch.pk, provider=provider)
    assert _final_flags(timeframe="5m") == [True] * 5 + [False]


@pytest.mark.parametrize("vendor", ["postgresql", "sqlite"])
def test_partial_values_written_late_never_replace_a_final_bar(monkeypatch, vendor):
    monkeypatch.setattr(connection, "vendor", vendor)  # the COPY merge, or the ORM's bulk upsert
    forming = HOURLY.copy()
    forming.iloc[-1, forming.columns.get_loc("close")] = forming["open"].iloc[-1]
    forming.iloc[-1, forming.columns.get_loc("high")] = forming[["open", "high"]].iloc[-1].max()
    with time_machine.travel(AT_1535_IST, tick=False):
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.H1, candles=HOURLY, source="frame")
        # A slower request, sent at 15:25 before the one above, is stored after it.
        result = candles_upsert(
            symbol="TCS.NS", timeframe=Timeframe.H1, candles=forming, source="late", fetched_at=AT_1525_IST
        )
    last = MarketData.objects.get(timeframe="1H", timestamp=HOURLY.index[-1].to_pydatetime())
    assert (last.final, last.source) == (True, "frame")
    assert last.close_price == pytest.approx(HOURLY["close"].iloc[-1])
    assert result.inserted == 0
    assert MarketData.objects.filter(timeframe="1H", source="late").count() == 6  # the closed bars, rewritten
