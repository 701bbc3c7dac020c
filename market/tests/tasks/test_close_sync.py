"""The intraday schedule runs once more just after the close, and that run is not skipped as 'market closed'."""

from datetime import UTC, datetime

import pytest
import time_machine

from market import tasks
from market.tests.factories import InstrumentFactory
from tradingdash.schedule import BEAT_SCHEDULE

pytestmark = pytest.mark.django_db


def test_schedule_has_a_run_just_after_the_nse_close():
    entry = BEAT_SCHEDULE["market-sync-intraday-close"]
    schedule = entry["schedule"]
    assert entry["task"] == "market.sync_watchlist"
    assert (schedule.hour, schedule.minute) == ({15}, {35})  # CELERY_TIMEZONE is Asia/Kolkata
    assert entry["kwargs"]["only_when_open"] is True and entry["kwargs"]["grace_minutes"] >= 5


@pytest.fixture
def enqueued(monkeypatch):
    sent = []
    monkeypatch.setattr(tasks.sync_symbol, "apply_async", lambda args, **kw: sent.append(tuple(args)))
    return sent


def _run_close_entry():
    return tasks.sync_watchlist(**BEAT_SCHEDULE["market-sync-intraday-close"]["kwargs"])


def test_post_close_run_syncs_nse_instruments_and_not_closed_exchanges(enqueued):
    InstrumentFactory(symbol="TCS.NS", exchange="NSE")
    InstrumentFactory(symbol="^GSPC", exchange="NYSE")
    with time_machine.travel(datetime(2026, 6, 3, 10, 5, tzinfo=UTC), tick=False):  # Wednesday 15:35 IST
        result = _run_close_entry()
    assert result["enqueued"] > 0
    synced = {symbol for symbol, _ in enqueued}
    assert ("TCS.NS", "1H") in enqueued
    assert "^GSPC" not in synced  # 06:05 in New York: NYSE has not opened


def test_post_close_run_outside_the_grace_or_on_a_holiday_is_skipped(enqueued):
    with time_machine.travel(datetime(2026, 6, 3, 10, 30, tzinfo=UTC), tick=False):  # 16:00 IST
        assert _run_close_entry()["skipped"] == "market closed"
    with time_machine.travel(datetime(2026, 11, 24, 10, 5, tzinfo=UTC), tick=False):  # Guru Nanak Jayanti
        assert _run_close_entry()["skipped"] == "market closed"
    assert enqueued == []


def test_intraday_run_follows_each_instruments_exchange(enqueued):
    InstrumentFactory(symbol="^GSPC", exchange="NYSE")
    with time_machine.travel(
        datetime(2026, 6, 3, 15, 0, tzinfo=UTC), tick=False
    ):  # 11:00 New York, NSE closed
        result = tasks.sync_watchlist(["5m"], only_when_open=True)
    assert result["symbols"] == ["^GSPC"]
