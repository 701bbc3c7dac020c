"""The intraday schedule runs while each exchange's calendar says it is in session (special sessions and
shortened days included) and once more just after each close, and that run is not skipped as 'market closed'."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from market import tasks
from market.models import MarketSession
from market.tests.factories import InstrumentFactory
from tradingdash.schedule import BEAT_SCHEDULE

pytestmark = pytest.mark.django_db
IST = ZoneInfo("Asia/Kolkata")


def test_intraday_entries_run_every_five_minutes_every_day():
    """The calendar decides, not the crontab: special sessions fall on weekends and evenings."""
    for name in ("market-sync-intraday", "market-sync-intraday-close"):
        entry = BEAT_SCHEDULE[name]
        schedule = entry["schedule"]
        assert entry["task"] == "market.sync_watchlist"
        assert schedule.minute == set(range(0, 60, 5))
        assert schedule.hour == set(range(24)) and schedule.day_of_week == set(range(7))
        assert entry["kwargs"]["only_when_open"] is True
    close = BEAT_SCHEDULE["market-sync-intraday-close"]["kwargs"]
    assert close["grace_minutes"] - close["after_close_minutes"] == 5  # one five-minute slot per close


@pytest.fixture
def enqueued(monkeypatch):
    sent = []
    monkeypatch.setattr(tasks.sync_symbol, "apply_async", lambda args, **kw: sent.append(tuple(args)))
    return sent


def _run_close_entry():
    return tasks.sync_watchlist(**BEAT_SCHEDULE["market-sync-intraday-close"]["kwargs"])


def _runs(entry: str, day_start: datetime, hours: int) -> list[str]:
    """The IST clock times at which `entry`'s five-minute runs over `hours` hours enqueue TCS.NS."""
    runs = []
    for step in range(hours * 12):
        at = day_start + timedelta(minutes=5 * step)
        with time_machine.travel(at, tick=False):
            result = tasks.sync_watchlist(**BEAT_SCHEDULE[entry]["kwargs"])
        if "TCS.NS" in result.get("symbols", []):
            runs.append(f"{at.astimezone(IST):%H:%M}")
    return runs


def test_on_a_regular_day_the_close_run_happens_once_at_1535(enqueued):
    InstrumentFactory(symbol="TCS.NS", exchange="NSE")
    assert _runs("market-sync-intraday-close", datetime(2026, 6, 3, 9, 0, tzinfo=IST), 9) == ["15:35"]
    intraday = _runs("market-sync-intraday", datetime(2026, 6, 3, 9, 0, tzinfo=IST), 9)
    assert (intraday[0], intraday[-1], len(intraday)) == ("09:15", "15:25", 75)


def test_a_special_evening_session_on_a_sunday_is_synced_and_closed_out(enqueued):
    """A made-up 18:15-19:15 session (test fixture, not an announced Muhurat time)."""
    InstrumentFactory(symbol="TCS.NS", exchange="NSE")
    MarketSession.objects.create(
        exchange="NSE", date=date(2026, 11, 8), open_time=time(18, 15), close_time=time(19, 15),
        description="TEST FIXTURE evening session",
    )  # fmt: skip
    sunday = datetime(2026, 11, 8, 0, 0, tzinfo=IST)
    assert _runs("market-sync-intraday", sunday, 24) == ["18:15", "18:20", "18:25", "18:30", "18:35", "18:40",
                                                          "18:45", "18:50", "18:55", "19:00", "19:05", "19:10"]  # fmt: skip
    assert _runs("market-sync-intraday-close", sunday, 24) == ["19:20"]


def test_a_shortened_day_is_closed_out_after_its_early_close(enqueued):
    InstrumentFactory(symbol="TCS.NS", exchange="NSE")
    MarketSession.objects.create(
        exchange="NSE", date=date(2026, 12, 24), kind="shortened", open_time=time(9, 15), close_time=time(13, 0),
        description="TEST FIXTURE shortened day",
    )  # fmt: skip
    day = datetime(2026, 12, 24, 9, 0, tzinfo=IST)
    assert _runs("market-sync-intraday-close", day, 8) == ["13:05"]
    assert _runs("market-sync-intraday", day, 8)[-1] == "12:55"


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
