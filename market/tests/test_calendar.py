import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from market.calendar import ExchangeCalendar, bundled_nse_holidays, load_holidays_csv

IST = ZoneInfo("Asia/Kolkata")


def ist(*args: int) -> datetime:
    return datetime(*args, tzinfo=IST)


@pytest.fixture(scope="module")
def nse() -> ExchangeCalendar:
    return ExchangeCalendar(bundled_nse_holidays())


def test_weekend_is_closed_until_monday(nse):
    status = nse.status(ist(2026, 11, 21, 11, 0))  # Saturday
    assert (status.is_open, status.session, status.reason) == (False, "closed", "weekend")
    assert status.next_open == ist(2026, 11, 23, 9, 15)
    assert status.next_close == ist(2026, 11, 23, 15, 30)


def test_holiday_reports_its_description(nse):
    status = nse.status(ist(2026, 11, 24, 10, 0))  # Tuesday, Guru Nanak Jayanti
    assert not status.is_open
    assert status.session == "closed"
    assert status.reason == "Prakash Gurpurb Sri Guru Nanak Dev"
    assert status.next_open == ist(2026, 11, 25, 9, 15)


def test_before_market_hours(nse):
    status = nse.status(ist(2026, 11, 25, 8, 0))
    assert (status.is_open, status.session, status.reason) == (False, "closed", "before market hours")
    assert status.next_open == ist(2026, 11, 25, 9, 15)
    assert status.next_close == ist(2026, 11, 25, 15, 30)


@pytest.mark.parametrize(
    ("clock", "reason"),
    [
        (time(9, 0), "pre-open order entry"),
        (time(9, 7), "pre-open order entry"),
        (time(9, 8), "pre-open order matching"),
    ],
)
def test_pre_open_session(nse, clock, reason):
    status = nse.status(datetime.combine(date(2026, 11, 25), clock, IST))
    assert (status.is_open, status.session, status.reason) == (False, "pre_open", reason)
    assert status.next_open == ist(2026, 11, 25, 9, 15)


def test_open_session_reports_todays_close_and_tomorrows_open(nse):
    now_utc = datetime(2026, 11, 25, 5, 30, tzinfo=UTC)  # 11:00 IST
    status = nse.status(now_utc)
    assert (status.is_open, status.session, status.reason) == (True, "open", None)
    assert status.now == ist(2026, 11, 25, 11, 0)
    assert status.now.tzinfo == IST
    assert status.next_close == ist(2026, 11, 25, 15, 30)
    assert status.next_open == ist(2026, 11, 26, 9, 15)
    assert (status.exchange, status.timezone) == ("NSE", "Asia/Kolkata")


def test_session_boundaries_open_inclusive_close_exclusive(nse):
    assert nse.status(ist(2026, 11, 25, 9, 15)).is_open
    assert nse.status(ist(2026, 11, 25, 15, 29, 59)).is_open
    at_close = nse.status(ist(2026, 11, 25, 15, 30))
    assert (at_close.is_open, at_close.reason) == (False, "after hours")
    assert at_close.next_close == ist(2026, 11, 26, 15, 30)


def test_after_hours_points_to_next_session(nse):
    status = nse.status(ist(2026, 11, 25, 16, 0))
    assert (status.session, status.reason) == ("closed", "after hours")
    assert status.next_open == ist(2026, 11, 26, 9, 15)
    assert status.next_close == ist(2026, 11, 26, 15, 30)


def test_friday_evening_opens_next_monday(nse):
    assert nse.next_open(ist(2026, 11, 27, 18, 0)) == ist(2026, 11, 30, 9, 15)
    assert nse.next_close(ist(2026, 11, 27, 18, 0)) == ist(2026, 11, 30, 15, 30)


def test_holiday_run_across_a_weekend(nse):
    # Good Friday (3 Apr 2026), then the weekend: Thursday's close to Monday's open.
    assert nse.next_open(ist(2026, 4, 2, 15, 45)) == ist(2026, 4, 6, 9, 15)
    assert nse.status(ist(2026, 4, 3, 12, 0)).reason == "Good Friday"
    assert nse.status(ist(2026, 4, 4, 12, 0)).reason == "weekend"


def test_holiday_in_mid_week_skips_one_day(nse):
    assert nse.next_open(ist(2026, 3, 2, 16, 0)) == ist(2026, 3, 4, 9, 15)  # Holi on Tuesday 3 Mar


@pytest.mark.parametrize("method", ["status", "next_open", "next_close"])
def test_naive_datetimes_are_rejected(nse, method):
    with pytest.raises(ValueError, match="aware"):
        getattr(nse, method)(datetime(2026, 11, 25, 10, 0))


def test_status_is_immutable(nse):
    status = nse.status(ist(2026, 11, 25, 10, 0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        status.is_open = False


def test_trading_days_skip_weekends_and_holidays_inclusive_of_both_ends(nse):
    days = nse.trading_days(date(2026, 11, 20), date(2026, 11, 30))
    assert days == [date(2026, 11, d) for d in (20, 23, 25, 26, 27, 30)]
    assert nse.trading_days(date(2026, 11, 30), date(2026, 11, 20)) == []
    assert nse.trading_days(date(2026, 11, 24), date(2026, 11, 24)) == []


def test_is_trading_day(nse):
    assert nse.is_trading_day(date(2026, 11, 25))
    assert not nse.is_trading_day(date(2026, 11, 24))  # holiday
    assert not nse.is_trading_day(date(2026, 11, 22))  # Sunday


def test_next_and_previous_trading_day(nse):
    assert nse.next_trading_day(date(2026, 4, 2)) == date(2026, 4, 6)
    assert nse.previous_trading_day(date(2026, 4, 6)) == date(2026, 4, 2)


def test_session_bars_are_utc_bar_opens_within_the_session(nse):
    hourly = nse.session_bars(date(2026, 11, 25), timedelta(hours=1))
    assert hourly[0] == datetime(2026, 11, 25, 3, 45, tzinfo=UTC)  # 09:15 IST
    assert hourly[-1] == datetime(2026, 11, 25, 9, 45, tzinfo=UTC)  # 15:15 IST, cut short by the close
    assert len(hourly) == 7
    assert all(bar.utcoffset() == timedelta(0) for bar in hourly)
    five_minutes = nse.session_bars(date(2026, 11, 25), timedelta(minutes=5))
    assert len(five_minutes) == 75
    assert five_minutes[-1] == datetime(2026, 11, 25, 9, 55, tzinfo=UTC)  # 15:25 IST


def test_session_bars_of_closed_day_are_empty(nse):
    assert nse.session_bars(date(2026, 11, 24), timedelta(minutes=5)) == []
    with pytest.raises(ValueError):
        nse.session_bars(date(2026, 11, 25), timedelta(0))


def test_session_mask_keeps_only_regular_session_timestamps(nse):
    index = pd.DatetimeIndex(
        [
            ist(2026, 11, 25, 9, 10),  # pre-open
            ist(2026, 11, 25, 9, 15),
            ist(2026, 11, 25, 15, 25),
            ist(2026, 11, 25, 15, 30),  # the close
            ist(2026, 11, 24, 10, 0),  # holiday
            ist(2026, 11, 8, 18, 15),  # Sunday (Muhurat trading)
        ]
    ).tz_convert(UTC)
    assert nse.session_mask(index).tolist() == [False, True, True, False, False, False]
    with pytest.raises(ValueError):
        nse.session_mask(pd.DatetimeIndex([datetime(2026, 11, 25, 10, 0)]))


def test_session_times_must_be_ordered():
    with pytest.raises(ValueError):
        ExchangeCalendar({}, open=time(16, 0), close=time(15, 30))


def test_bundled_holidays_are_the_published_2026_list():
    holidays = bundled_nse_holidays()
    assert len(holidays) == 16
    assert holidays[date(2026, 11, 24)] == "Prakash Gurpurb Sri Guru Nanak Dev"
    assert holidays[date(2026, 1, 15)] == "Municipal Corporation Election - Maharashtra"
    assert all(day.weekday() < 5 for day in holidays)


def test_load_holidays_csv_reads_dates_and_descriptions(tmp_path):
    path = tmp_path / "holidays.csv"
    path.write_text("date,description\n2027-01-26,Republic Day\n\n2027-03-22,Holi\n", encoding="utf-8")
    assert load_holidays_csv(path) == {date(2027, 1, 26): "Republic Day", date(2027, 3, 22): "Holi"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("day,name\n2027-01-26,Republic Day\n", "line 1"),
        ("date,description\n2027-01-26,Republic Day\n26/01/2027,Republic Day\n", "line 3: invalid ISO date"),
        ("date,description\n2027-01-26,\n", "line 2: missing description"),
        (
            "date,description\n2027-01-26,Republic Day\n2027-01-26,Again\n",
            "line 3: 2027-01-26 is listed twice",
        ),
        ("date,description\n2027-01-26,Republic Day,extra\n", "line 2: expected 2 columns"),
        ("", "line 1"),
    ],
)
def test_load_holidays_csv_rejects_bad_rows_with_line_number(tmp_path, content, message):
    path = tmp_path / "holidays.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_holidays_csv(path)


def test_trading_days_array_matches_the_list(nse):
    array = nse.trading_days_array(date(2026, 1, 1), date(2026, 12, 31))
    assert array.dtype == "datetime64[D]"
    assert array.tolist() == nse.trading_days(date(2026, 1, 1), date(2026, 12, 31))
    assert len(array) == 261 - 16  # weekdays of 2026 minus the weekday holidays
    assert nse.trading_days_array(date(2026, 2, 1), date(2026, 1, 1)).size == 0
