"""Derived bars against bars computed by hand on the NSE calendar (Friday 2026-11-27, Diwali week of 2026-11-09)."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from market.calendar import ExchangeCalendar, bundled_nse_holidays
from market.resample import daily_to, intraday_to

IST = ZoneInfo("Asia/Kolkata")
NSE = ExchangeCalendar(bundled_nse_holidays())


def _frame(rows, final=None):
    index = pd.DatetimeIndex([ts for ts, *_ in rows], name="timestamp").tz_convert(UTC)
    frame = pd.DataFrame(
        [r[1:] for r in rows], index=index, columns=["open", "high", "low", "close", "volume"]
    )
    if final is not None:
        frame["final"] = final
    return frame


def _day(d: date) -> datetime:
    return datetime.combine(d, time(), IST)


def _daily(days: list[date]):
    return _frame([(_day(d), 100 + i, 110 + i, 90 + i, 105 + i, 1000 * (i + 1)) for i, d in enumerate(days)])


def test_week_with_a_holiday_is_built_from_its_four_sessions():
    # 2026-11-09..13: Tuesday 10 November is Diwali-Balipratipada, an NSE holiday.
    days = NSE.trading_days(date(2026, 11, 9), date(2026, 11, 13))
    assert len(days) == 4
    weekly = daily_to(_daily(days), "1W", NSE)
    assert len(weekly) == 1
    bar = weekly.iloc[0]
    assert weekly.index[0] == datetime(2026, 11, 9, tzinfo=IST).astimezone(UTC)
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (100, 113, 90, 108, 10000)
    assert bar.final


def test_a_week_still_trading_is_not_final():
    days = NSE.trading_days(date(2026, 11, 23), date(2026, 11, 26))  # Mon..Thu; Friday 27 has no bar yet
    weekly = daily_to(_daily(days), "1W", NSE)
    assert not weekly.iloc[0].final


def test_a_week_with_a_partial_day_is_not_final():
    days = NSE.trading_days(date(2026, 11, 16), date(2026, 11, 20))
    daily = _daily(days)
    daily["final"] = [True, True, True, True, False]
    assert not daily_to(daily, "1W", NSE).iloc[0].final


def test_months_open_on_their_first_trading_day():
    days = NSE.trading_days(date(2026, 9, 28), date(2026, 10, 6))  # 2 October is a holiday
    monthly = daily_to(_daily(days), "1M", NSE)
    assert list(monthly.index) == [
        datetime(2026, 9, 28, tzinfo=IST).astimezone(UTC),
        datetime(2026, 10, 1, tzinfo=IST).astimezone(UTC),
    ]
    assert monthly.iloc[0].final and not monthly.iloc[1].final  # October goes on past the 6th


def _fifteens(day: date, count: int):
    start = datetime.combine(day, time(9, 15), IST)
    return _frame(
        [(start + timedelta(minutes=15 * i), 10 + i, 11 + i, 9 + i, 10.5 + i, 100) for i in range(count)]
    )


def test_nse_hours_start_at_the_session_open_and_the_last_is_cut_at_the_close():
    day = date(2026, 11, 27)
    hourly = intraday_to(_fifteens(day, 25), part=timedelta(minutes=15), bar=timedelta(hours=1), calendar=NSE)
    local = [ts.tz_convert(IST).strftime("%H:%M") for ts in hourly.index]
    assert local == ["09:15", "10:15", "11:15", "12:15", "13:15", "14:15", "15:15"]
    first = hourly.iloc[0]
    assert (first.open, first.high, first.low, first.close, first.volume) == (10, 14, 9, 13.5, 400)
    last = hourly.iloc[-1]  # 15:15-15:30: one 15-minute part, complete at the close
    assert last.volume == 100 and last.final
    assert hourly["final"].all()


def test_an_hour_whose_parts_are_not_all_in_is_not_final():
    day = date(2026, 11, 27)
    hourly = intraday_to(_fifteens(day, 6), part=timedelta(minutes=15), bar=timedelta(hours=1), calendar=NSE)
    assert list(hourly["final"]) == [True, False]


def test_four_hour_bars():
    day = date(2026, 11, 27)
    bars = intraday_to(_fifteens(day, 25), part=timedelta(minutes=15), bar=timedelta(hours=4), calendar=NSE)
    assert [ts.tz_convert(IST).strftime("%H:%M") for ts in bars.index] == ["09:15", "13:15"]
    assert list(bars["volume"]) == [1600, 900]


def test_derived_bar_must_be_a_multiple_of_its_parts():
    with pytest.raises(ValueError, match="multiple"):
        intraday_to(
            _fifteens(date(2026, 11, 27), 4),
            part=timedelta(minutes=15),
            bar=timedelta(minutes=20),
            calendar=NSE,
        )
