"""Derived bars against bars computed by hand on the NSE calendar (Friday 2026-11-27, Diwali week of 2026-11-09),
and against a bar-by-bar reference on random series of three exchanges' calendars."""

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from market.calendar import ExchangeCalendar, bundled_nse_holidays, library_calendar
from market.columns import BarColumns, columns_of
from market.resample import daily_to, intraday_to, period_days

IST = ZoneInfo("Asia/Kolkata")
NSE = ExchangeCalendar(bundled_nse_holidays())


def _bars(rows, final=None, source=None) -> BarColumns:
    """Bars of (aware open time, open, high, low, close, volume) rows."""
    return columns_of(
        time=[int(ts.timestamp()) for ts, *_ in rows],
        open=[r[1] for r in rows],
        high=[r[2] for r in rows],
        low=[r[3] for r in rows],
        close=[r[4] for r in rows],
        volume=[r[5] for r in rows],
        final=[True] * len(rows) if final is None else final,
        source=source or ["csv"] * len(rows),
    )


def _day(d: date, tz=IST) -> datetime:
    return datetime.combine(d, time(), tz)


def _daily(days: list[date], final=None, source=None, tz=IST) -> BarColumns:
    rows = [(_day(d, tz), 100 + i, 110 + i, 90 + i, 105 + i, 1000 * (i + 1)) for i, d in enumerate(days)]
    return _bars(rows, final, source)


def _utc(ts: datetime) -> int:
    return int(ts.timestamp())


def test_week_with_a_holiday_is_built_from_its_four_sessions():
    # 2026-11-09..13: Tuesday 10 November is Diwali-Balipratipada, an NSE holiday.
    days = NSE.trading_days(date(2026, 11, 9), date(2026, 11, 13))
    assert len(days) == 4
    weekly = daily_to(_daily(days), "1W", NSE)
    assert len(weekly) == 1
    assert weekly.time.tolist() == [_utc(datetime(2026, 11, 9, tzinfo=IST))]
    bar = (weekly.open[0], weekly.high[0], weekly.low[0], weekly.close[0], weekly.volume[0])
    assert bar == (100, 113, 90, 108, 10000)
    assert weekly.final.tolist() == [True]


def test_a_week_still_trading_is_not_final():
    days = NSE.trading_days(date(2026, 11, 23), date(2026, 11, 26))  # Mon..Thu; Friday 27 has no bar yet
    assert daily_to(_daily(days), "1W", NSE).final.tolist() == [False]


def test_a_week_with_a_partial_day_is_not_final():
    days = NSE.trading_days(date(2026, 11, 16), date(2026, 11, 20))
    daily = _daily(days, final=[True, True, True, True, False])
    assert daily_to(daily, "1W", NSE).final.tolist() == [False]


def test_months_open_on_their_first_trading_day():
    days = NSE.trading_days(date(2026, 9, 28), date(2026, 10, 6))  # 2 October is a holiday
    monthly = daily_to(_daily(days), "1M", NSE)
    assert monthly.time.tolist() == [
        _utc(datetime(2026, 9, 28, tzinfo=IST)),
        _utc(datetime(2026, 10, 1, tzinfo=IST)),
    ]
    # September's bars from the 28th only stand for three of its sessions; October goes on past the 6th.
    assert monthly.final.tolist() == [False, False]


def test_a_week_without_a_session_is_never_final():
    closed = {date(2026, 11, 16) + timedelta(days=i): "closed all week" for i in range(5)}
    calendar = ExchangeCalendar({**bundled_nse_holidays(), **closed})
    stray = _daily([date(2026, 11, 21)])  # a Saturday bar in that week
    assert daily_to(stray, "1W", calendar).final.tolist() == [False]
    # With its five sessions it is not final either: none of them has a bar.
    assert daily_to(stray, "1W", NSE).final.tolist() == [False]


def test_each_derived_bar_names_the_sources_of_its_parts():
    days = NSE.trading_days(date(2026, 11, 16), date(2026, 11, 27))
    sources = ["yfinance"] * 5 + ["csv", "yfinance", "yfinance", "yfinance", "yfinance"]
    weekly = daily_to(_daily(days, source=sources), "1W", NSE)
    assert weekly.source == ["yfinance", "csv,yfinance"]


def test_resampling_nothing_gives_nothing():
    empty = _daily([])
    assert len(daily_to(empty, "1W", NSE)) == 0
    assert len(intraday_to(empty, part=timedelta(minutes=15), bar=timedelta(hours=1), calendar=NSE)) == 0


def test_daily_bars_resample_to_weeks_or_months_only():
    with pytest.raises(ValueError, match="1W or 1M"):
        daily_to(_daily([date(2026, 11, 27)]), "1D", NSE)


def _fifteens(day: date, count: int) -> BarColumns:
    start = datetime.combine(day, time(9, 15), IST)
    return _bars(
        [(start + timedelta(minutes=15 * i), 10 + i, 11 + i, 9 + i, 10.5 + i, 100) for i in range(count)]
    )


def _local_clock(times: np.ndarray) -> list[str]:
    return [datetime.fromtimestamp(t, IST).strftime("%H:%M") for t in times.tolist()]


def test_nse_hours_start_at_the_session_open_and_the_last_is_cut_at_the_close():
    day = date(2026, 11, 27)
    hourly = intraday_to(_fifteens(day, 25), part=timedelta(minutes=15), bar=timedelta(hours=1), calendar=NSE)
    assert _local_clock(hourly.time) == ["09:15", "10:15", "11:15", "12:15", "13:15", "14:15", "15:15"]
    assert (hourly.open[0], hourly.high[0], hourly.low[0], hourly.close[0], hourly.volume[0]) == (
        10,
        14,
        9,
        13.5,
        400,
    )
    assert hourly.volume[-1] == 100  # 15:15-15:30: one 15-minute part, complete at the close
    assert hourly.final.all()


def test_an_hour_whose_parts_are_not_all_in_is_not_final():
    day = date(2026, 11, 27)
    hourly = intraday_to(_fifteens(day, 6), part=timedelta(minutes=15), bar=timedelta(hours=1), calendar=NSE)
    assert hourly.final.tolist() == [True, False]


def test_four_hour_bars():
    day = date(2026, 11, 27)
    bars = intraday_to(_fifteens(day, 25), part=timedelta(minutes=15), bar=timedelta(hours=4), calendar=NSE)
    assert _local_clock(bars.time) == ["09:15", "13:15"]
    assert bars.volume.tolist() == [1600, 900]


def test_parts_outside_the_session_or_on_a_closed_day_belong_to_no_bar():
    friday, saturday = date(2026, 11, 27), date(2026, 11, 28)
    before_open = datetime.combine(friday, time(9, 0), IST)
    rows = [(before_open, 1, 1, 1, 1, 7)]
    rows += [(datetime.combine(friday, time(9, 15), IST), 10, 11, 9, 10.5, 100)]
    rows += [(datetime.combine(saturday, time(9, 15), IST), 20, 21, 19, 20.5, 5)]
    hourly = intraday_to(_bars(rows), part=timedelta(minutes=15), bar=timedelta(hours=1), calendar=NSE)
    assert _local_clock(hourly.time) == ["09:15"]
    assert hourly.volume.tolist() == [100]


def test_derived_bar_must_be_a_multiple_of_its_parts():
    with pytest.raises(ValueError, match="multiple"):
        intraday_to(
            _fifteens(date(2026, 11, 27), 4),
            part=timedelta(minutes=15),
            bar=timedelta(minutes=20),
            calendar=NSE,
        )


# Against a reference that builds each bar on its own, from the calendar's trading days and session hours.


def _reference_daily(bars: BarColumns, period: str, calendar, since: int | None = None) -> list[tuple]:
    since_day = datetime.fromtimestamp(since, calendar.tz).date() if since is not None else None
    groups: dict[date, list[int]] = {}
    for i, t in enumerate(bars.time.tolist()):
        day = datetime.fromtimestamp(t, calendar.tz).date()
        groups.setdefault(period_days(period, day)[0], []).append(i)
    out = []
    for first_day, members in groups.items():
        last_day_of_period = period_days(period, first_day)[1]
        sessions = calendar.trading_days(first_day, last_day_of_period)
        bar_days = {datetime.fromtimestamp(bars.time[i], calendar.tz).date() for i in members}
        # In a period with no bar before the series' start, its sessions before it cannot have a bar.
        excused = since_day is not None and min(bar_days) >= since_day
        required = [d for d in sessions if not excused or d >= since_day]
        over = bool(sessions) and set(required) <= bar_days
        opened = datetime.combine(
            datetime.fromtimestamp(bars.time[members[0]], calendar.tz).date(), time(), calendar.tz
        )
        out.append(_reference_bar(bars, members, int(opened.timestamp()), over))
    return out


def _reference_intraday(
    bars: BarColumns, part: timedelta, bar: timedelta, calendar, since: int | None = None
) -> list[tuple]:
    groups: dict[tuple, list[int]] = {}
    for i, t in enumerate(bars.time.tolist()):
        moment = datetime.fromtimestamp(t, UTC)
        day = moment.astimezone(calendar.tz).date()
        if not calendar.is_trading_day(day):
            continue
        opens, closes = calendar.session_hours(day)
        if not opens <= moment < closes:
            continue
        start = opens + (moment - opens) // bar * bar
        groups.setdefault((start, min(start + bar, closes)), []).append(i)
    out = []
    for (start, end), members in groups.items():
        stored = {datetime.fromtimestamp(bars.time[i], UTC) for i in members}
        slots = {start + i * part for i in range(-(-(end - start) // part))}
        if since is not None and min(stored) >= datetime.fromtimestamp(since, UTC):
            slots = {slot for slot in slots if slot >= datetime.fromtimestamp(since, UTC)}
        over = slots <= stored
        out.append(_reference_bar(bars, members, int(start.timestamp()), over))
    return out


def _reference_bar(bars: BarColumns, members: list[int], opened: int, over: bool) -> tuple:
    return (
        opened,
        bars.open[members[0]],
        max(bars.high[i] for i in members),
        min(bars.low[i] for i in members),
        bars.close[members[-1]],
        sum(int(bars.volume[i]) for i in members),
        over and all(bool(bars.final[i]) for i in members),
        ",".join(sorted({bars.source[i] for i in members})),
    )


def _as_tuples(bars: BarColumns) -> list[tuple]:
    fields = (bars.time, bars.open, bars.high, bars.low, bars.close, bars.volume, bars.final)
    return [
        (*values, source)
        for values, source in zip(zip(*(f.tolist() for f in fields), strict=True), bars.source, strict=True)
    ]


def _random_bars(rng: random.Random, times: list[int]) -> BarColumns:
    return columns_of(
        time=times,
        open=[rng.uniform(90, 110) for _ in times],
        high=[rng.uniform(110, 120) for _ in times],
        low=[rng.uniform(80, 90) for _ in times],
        close=[rng.uniform(90, 110) for _ in times],
        volume=[rng.randrange(10**6) for _ in times],
        final=[rng.random() > 0.05 for _ in times],
        source=[rng.choice(["yfinance", "yfinance", "yfinance", "csv"]) for _ in times],
    )


@pytest.mark.parametrize("exchange", ["NSE", "NYSE", "LSE"])
def test_derived_bars_match_a_bar_by_bar_reference(exchange):
    calendar = NSE if exchange == "NSE" else library_calendar(exchange)
    rng = random.Random(exchange)
    for _ in range(40):
        start = date(2019, 1, 1) + timedelta(days=rng.randrange(2500))
        days = [
            d
            for d in calendar.trading_days(start, start + timedelta(days=rng.randrange(1, 400)))
            if rng.random() > 0.1
        ]
        if rng.random() < 0.3:  # a stray bar on a Saturday
            days = sorted({*days, start + timedelta(days=(5 - start.weekday()) % 7)})
        daily = _random_bars(rng, [int(datetime.combine(d, time(), calendar.tz).timestamp()) for d in days])
        # Where the series begins (listing, provider's history start): none, or anywhere near the bars.
        since = rng.choice([None, int(datetime.combine(start, time(), calendar.tz).timestamp())])
        if since is not None:
            since += rng.randrange(-10, 40) * 86400 + rng.randrange(86400)
        for period in ("1W", "1M"):
            assert _as_tuples(daily_to(daily, period, calendar)) == _reference_daily(daily, period, calendar)
            assert _as_tuples(daily_to(daily, period, calendar, since=since)) == _reference_daily(
                daily, period, calendar, since
            )
        parts = []
        for day in [d for d in days if calendar.is_trading_day(d)][: rng.randrange(1, 6)]:
            opens, closes = calendar.session_hours(day)
            count = (closes - opens) // timedelta(minutes=15)
            steps = range(
                rng.randrange(-2, 3), count + rng.randrange(-3, 3)
            )  # some before the open, after the close
            parts += [
                int((opens + timedelta(minutes=15 * i)).timestamp()) for i in steps if rng.random() > 0.1
            ]
        fifteens = _random_bars(rng, sorted(set(parts)))
        # The lookback floor (any second) or a listing: around the first session's hours.
        since = parts and rng.choice([None, min(parts) + rng.randrange(-3600, 5 * 3600)])
        for bar in (timedelta(hours=1), timedelta(hours=4)):
            built = intraday_to(fifteens, part=timedelta(minutes=15), bar=bar, calendar=calendar)
            assert _as_tuples(built) == _reference_intraday(fifteens, timedelta(minutes=15), bar, calendar)
            built = intraday_to(fifteens, part=timedelta(minutes=15), bar=bar, calendar=calendar, since=since)
            assert _as_tuples(built) == _reference_intraday(
                fifteens, timedelta(minutes=15), bar, calendar, since
            )


def test_a_week_whose_monday_is_a_holiday_closes_with_its_friday():
    # Monday 2026-01-26 is Republic Day: the week of 26 January opens on Tuesday 27 and ends Friday 30.
    from market.bars import bar_close
    from market.timeframes import Timeframe

    days = NSE.trading_days(date(2026, 1, 26), date(2026, 1, 29))  # Tuesday to Thursday: still trading
    weekly = daily_to(_daily(days), "1W", NSE)
    assert weekly.time.tolist() == [_utc(_day(date(2026, 1, 27)))] and weekly.final.tolist() == [False]
    opened = datetime.fromtimestamp(int(weekly.time[0]), UTC)
    assert bar_close(NSE, Timeframe.W1, opened) == datetime(2026, 1, 30, 15, 30, tzinfo=IST)


# A derived bar is final only when every session of its period has a stored final part: a period that is over
# but lacks one of its sessions' bars (never fetched, or the provider had none) is built from less than it
# stands for.


def test_a_week_with_a_session_missing_inside_is_not_final():
    days = NSE.trading_days(date(2026, 11, 16), date(2026, 11, 20))
    del days[2]  # no bar for Wednesday 18 November; Friday's is in
    assert daily_to(_daily(days), "1W", NSE).final.tolist() == [False]


def test_a_week_whose_first_sessions_were_never_stored_is_not_final():
    days = NSE.trading_days(date(2026, 11, 18), date(2026, 11, 27))  # from the Wednesday of the first week
    assert daily_to(_daily(days), "1W", NSE).final.tolist() == [False, True]


def test_a_month_with_a_session_missing_is_not_final():
    days = NSE.trading_days(date(2026, 9, 1), date(2026, 10, 30))
    days.remove(date(2026, 9, 15))
    assert daily_to(_daily(days), "1M", NSE).final.tolist() == [False, True]


def test_a_holiday_shortened_nyse_week_is_final_with_its_four_sessions_only():
    nyse = library_calendar("NYSE")
    days = nyse.trading_days(date(2025, 11, 24), date(2025, 11, 30))  # Thanksgiving, Thursday 27, is closed
    assert date(2025, 11, 27) not in days and len(days) == 4
    assert daily_to(_daily(days, tz=nyse.tz), "1W", nyse).final.tolist() == [True]
    without_wednesday = _daily([d for d in days if d != date(2025, 11, 26)], tz=nyse.tz)
    assert daily_to(without_wednesday, "1W", nyse).final.tolist() == [False]


def test_an_hour_with_a_quarter_missing_inside_is_not_final():
    fifteens = _fifteens(date(2026, 11, 27), 8)  # 09:15 ... 11:00, two whole hours
    gap = fifteens.take(np.array([0, 1, 3, 4, 5, 6, 7]))  # no 09:45 quarter
    hourly = intraday_to(gap, part=timedelta(minutes=15), bar=timedelta(hours=1), calendar=NSE)
    assert hourly.final.tolist() == [False, True]


def test_an_hour_whose_first_quarters_were_never_stored_is_not_final():
    fifteens = _fifteens(date(2026, 11, 27), 8).take(np.arange(2, 8))  # from 09:45 (beyond a lookback)
    hourly = intraday_to(fifteens, part=timedelta(minutes=15), bar=timedelta(hours=1), calendar=NSE)
    assert _local_clock(hourly.time) == ["09:15", "10:15"] and hourly.final.tolist() == [False, True]


# Except where the series begins (`since`: the listing, the provider's known history start, its lookback floor):
# in a period with no part before it, its sessions before it could never have a part.


def test_a_listing_week_is_final_from_its_listing_day():
    days = NSE.trading_days(date(2026, 11, 18), date(2026, 11, 27))  # listed on Wednesday 18 November
    since = _utc(_day(date(2026, 11, 18)))
    assert daily_to(_daily(days), "1W", NSE, since=since).final.tolist() == [True, True]
    without_thursday = _daily([d for d in days if d != date(2026, 11, 19)])
    assert daily_to(without_thursday, "1W", NSE, since=since).final.tolist() == [False, True]
    november = NSE.trading_days(date(2026, 11, 18), date(2026, 11, 30))
    assert daily_to(_daily(november), "1M", NSE, since=since).final.tolist() == [True]


def test_periods_stored_before_the_start_count_every_session():
    # Days another source stored before where this provider's history starts: a whole week is still whole, one
    # without its Monday is not (the series had sessions that week).
    days = NSE.trading_days(date(2026, 11, 16), date(2026, 11, 27))
    since = _utc(_day(date(2026, 11, 25)))
    assert daily_to(_daily(days), "1W", NSE, since=since).final.tolist() == [True, True]
    fifteens = _fifteens(date(2026, 11, 27), 8)
    hourly = intraday_to(
        fifteens,
        part=timedelta(minutes=15),
        bar=timedelta(hours=1),
        calendar=NSE,
        since=_utc(_day(date(2026, 12, 1))),
    )
    assert hourly.final.tolist() == [True, True]
    without_monday = _daily(days[1:])
    assert daily_to(without_monday, "1W", NSE, since=since).final.tolist() == [False, True]
    hourly = intraday_to(
        fifteens.take(np.arange(1, 8)),
        part=timedelta(minutes=15),
        bar=timedelta(hours=1),
        calendar=NSE,
        since=_utc(_day(date(2026, 12, 1))),
    )
    assert hourly.final.tolist() == [False, True]


def test_an_hour_from_the_lookback_floor_is_final_with_the_quarters_after_it():
    fifteens = _fifteens(date(2026, 11, 27), 8).take(np.arange(2, 8))  # from 09:45
    floor = _utc(datetime(2026, 11, 27, 9, 36, tzinfo=IST))  # 09:15 and 09:30 opened before it
    hourly = intraday_to(
        fifteens, part=timedelta(minutes=15), bar=timedelta(hours=1), calendar=NSE, since=floor
    )
    assert hourly.final.tolist() == [True, True]
    earlier = _utc(datetime(2026, 11, 27, 9, 30, tzinfo=IST))  # the 09:30 quarter could still be had
    hourly = intraday_to(
        fifteens, part=timedelta(minutes=15), bar=timedelta(hours=1), calendar=NSE, since=earlier
    )
    assert hourly.final.tolist() == [False, True]
