"""Special sessions and shortened days in the pure calendar (issue #13). Every date and time here is a made-up
fixture, not an announced session."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from market.bars import bar_close, bars_ahead
from market.calendar import ExchangeCalendar, SessionOverride, bundled_nse_holidays, library_calendar
from market.columns import columns_of
from market.resample import intraday_to
from market.timeframes import Timeframe

IST = ZoneInfo("Asia/Kolkata")
NY = ZoneInfo("America/New_York")
SUNDAY = date(2026, 11, 8)  # a weekend day given a one-hour evening session (Muhurat-like)
HOLIDAY = date(2026, 11, 24)  # Tuesday, an NSE holiday in the bundled list, given an evening session
SHORT = date(2026, 12, 24)  # a Thursday that closes at 13:00
FIXTURES = {
    SUNDAY: SessionOverride(open=time(18, 15), close=time(19, 15), description="TEST evening session"),
    HOLIDAY: SessionOverride(open=time(18, 15), close=time(19, 15), description="TEST holiday session"),
    SHORT: SessionOverride(open=time(9, 15), close=time(13, 0), description="TEST shortened day"),
}


def ist(*args: int) -> datetime:
    return datetime(*args, tzinfo=IST)


@pytest.fixture(scope="module")
def nse() -> ExchangeCalendar:
    return ExchangeCalendar(bundled_nse_holidays(), sessions=FIXTURES)


def test_a_special_session_makes_a_weekend_day_and_a_holiday_trading_days(nse):
    plain = ExchangeCalendar(bundled_nse_holidays())
    assert not plain.is_trading_day(SUNDAY) and not plain.is_trading_day(HOLIDAY)
    assert nse.is_trading_day(SUNDAY) and nse.is_trading_day(HOLIDAY)
    week = nse.trading_days(date(2026, 11, 6), date(2026, 11, 9))
    assert week == [date(2026, 11, 6), SUNDAY, date(2026, 11, 9)]
    assert nse.next_trading_day(date(2026, 11, 6)) == SUNDAY
    assert nse.previous_trading_day(date(2026, 11, 9)) == SUNDAY
    assert HOLIDAY not in nse.holidays


def test_muhurat_session_bars_align_to_its_open(nse):
    bars = nse.session_bars(SUNDAY, timedelta(minutes=15))
    assert [b.astimezone(IST).time() for b in bars] == [time(18, 15), time(18, 30), time(18, 45), time(19, 0)]
    hourly = nse.session_bars(SUNDAY, timedelta(hours=1))
    assert [b.astimezone(IST).time() for b in hourly] == [time(18, 15)]
    assert nse.session_hours(HOLIDAY) == (ist(2026, 11, 24, 18, 15), ist(2026, 11, 24, 19, 15))


def test_bar_arithmetic_runs_through_the_special_session(nse):
    friday_last = ist(2026, 11, 6, 15, 15).astimezone(UTC)
    assert bars_ahead(nse, Timeframe.M15, friday_last, 1) == ist(2026, 11, 8, 18, 15)
    assert bars_ahead(nse, Timeframe.M15, friday_last, 5) == ist(2026, 11, 9, 9, 15)
    assert bar_close(nse, Timeframe.M15, ist(2026, 11, 8, 19, 0)) == ist(2026, 11, 8, 19, 15)
    assert bar_close(nse, Timeframe.D1, ist(2026, 11, 8, 0, 0)) == ist(2026, 11, 8, 19, 15)
    assert bars_ahead(nse, Timeframe.D1, ist(2026, 11, 6, 0, 0), 1) == ist(2026, 11, 8, 0, 0)


def test_session_mask_keeps_the_special_sessions_bars_only(nse):
    stamps = [
        ist(2026, 11, 8, 18, 0),
        ist(2026, 11, 8, 18, 15),
        ist(2026, 11, 8, 19, 0),
        ist(2026, 11, 8, 19, 15),
    ]
    stamps += [
        ist(2026, 11, 24, 10, 0),
        ist(2026, 11, 24, 18, 30),
        ist(2026, 12, 24, 12, 45),
        ist(2026, 12, 24, 13, 0),
    ]
    index = pd.DatetimeIndex(stamps).tz_convert(UTC)
    assert nse.session_mask(index).tolist() == [False, True, True, False, False, True, True, False]
    assert nse.close_minutes(pd.DatetimeIndex([SUNDAY, SHORT, date(2026, 12, 23)]).values.astype("datetime64[D]")).tolist() == [
        19 * 60 + 15,
        13 * 60,
        15 * 60 + 30,
    ]  # fmt: skip


def test_hourly_bars_built_from_15m_start_at_the_special_open(nse):
    times = [int((ist(2026, 11, 8, 18, 15) + timedelta(minutes=15 * i)).timestamp()) for i in range(4)]
    parts = columns_of(
        time=times, open=[10.0, 11, 12, 13], high=[11.0, 12, 13, 14], low=[9.0, 10, 11, 12],
        close=[11.0, 12, 13, 14], volume=[1, 2, 3, 4], final=[True] * 4, source=["csv"] * 4,
    )  # fmt: skip
    hourly = intraday_to(parts, part=timedelta(minutes=15), bar=timedelta(hours=1), calendar=nse)
    assert hourly.time.tolist() == [int(ist(2026, 11, 8, 18, 15).timestamp())]
    assert (hourly.open[0], hourly.close[0], hourly.volume[0]) == (10.0, 14.0, 10)
    assert hourly.final.tolist() == [True]


@pytest.mark.parametrize(
    ("clock", "is_open", "reason"),
    [
        (time(10, 0), False, "before market hours"),
        (time(18, 5), False, "before market hours"),  # no pre-open phase at an unusual open
        (time(18, 15), True, None),
        (time(19, 14), True, None),
        (time(19, 15), False, "after hours"),
        (time(19, 20), False, "after hours"),
    ],
)
def test_market_status_during_and_after_a_special_evening_session(nse, clock, is_open, reason):
    status = nse.status(datetime.combine(SUNDAY, clock, IST))
    assert (status.is_open, status.reason) == (is_open, reason)
    assert status.session == ("open" if is_open else "closed")
    assert status.special_session == "TEST evening session"
    if clock < time(18, 15):
        assert status.next_open == ist(2026, 11, 8, 18, 15)
    else:
        assert status.next_open == ist(2026, 11, 9, 9, 15)
    if clock < time(19, 15):
        assert status.next_close == ist(2026, 11, 8, 19, 15)


def test_a_holiday_with_an_evening_session_is_open_only_then(nse):
    morning = nse.status(ist(2026, 11, 24, 10, 0))
    assert (morning.is_open, morning.reason, morning.next_open) == (
        False,
        "before market hours",
        ist(2026, 11, 24, 18, 15),
    )
    assert nse.status(ist(2026, 11, 24, 18, 30)).is_open


def test_a_shortened_day_closes_early(nse):
    assert nse.session_hours(SHORT) == (ist(2026, 12, 24, 9, 15), ist(2026, 12, 24, 13, 0))
    assert nse.status(ist(2026, 12, 24, 9, 1)).reason == "pre-open order entry"  # the regular open keeps it
    assert nse.status(ist(2026, 12, 24, 12, 59)).is_open
    after = nse.status(ist(2026, 12, 24, 13, 0))
    assert (after.is_open, after.reason, after.special_session) == (
        False,
        "after hours",
        "TEST shortened day",
    )
    assert after.next_open == ist(2026, 12, 28, 9, 15)  # 25 Dec is an NSE holiday, then the weekend
    assert nse.session_bars(SHORT, timedelta(hours=1))[-1] == ist(2026, 12, 24, 12, 15)
    assert bar_close(nse, Timeframe.H1, ist(2026, 12, 24, 12, 15)) == ist(2026, 12, 24, 13, 0)
    assert nse.status(ist(2026, 12, 23, 13, 30)).special_session is None


def test_a_session_must_open_before_it_closes():
    with pytest.raises(ValueError, match="open before it closes"):
        SessionOverride(open=time(19, 15), close=time(18, 15))


def test_library_calendars_take_overrides_too():
    nyse = library_calendar("NYSE")
    saturday = date(2026, 6, 6)
    special = nyse.with_sessions(
        {
            saturday: SessionOverride(open=time(10, 0), close=time(12, 0), description="TEST Saturday"),
            date(2026, 6, 5): SessionOverride(open=time(9, 30), close=time(13, 0), description="TEST short"),
        }
    )
    assert not nyse.is_trading_day(saturday) and special.is_trading_day(saturday)
    assert special.status(datetime(2026, 6, 6, 11, 0, tzinfo=NY)).is_open
    assert not special.status(datetime(2026, 6, 6, 12, 0, tzinfo=NY)).is_open
    assert special.status(datetime(2026, 6, 5, 13, 30, tzinfo=NY)).reason == "after hours"
    assert nyse.status(datetime(2026, 6, 5, 13, 30, tzinfo=NY)).is_open  # the library's own is unchanged
    # The library's early closes stay where no override replaces them (the day after Thanksgiving).
    assert special.session_close(date(2026, 11, 27)) == datetime(2026, 11, 27, 13, 0, tzinfo=NY)
