"""One calendar per exchange: NSE/BSE from the holiday table, NYSE/NASDAQ/LSE from exchange_calendars."""

from datetime import UTC, date, datetime, time

import pandas as pd
import pytest
import time_machine

from market.bars import bar_close, bars_ahead
from market.calendar import UnknownExchange, library_calendar
from market.sources import calendar_for, calendar_for_symbol
from market.symbols import exchange_for_symbol
from market.tests.factories import InstrumentFactory
from market.timeframes import Timeframe


@pytest.mark.parametrize(
    ("symbol", "exchange"),
    [
        ("RELIANCE.NS", "NSE"),
        ("TCS.BO", "BSE"),
        ("^NSEI", "NSE"),
        ("^NSEBANK", "NSE"),
        ("^BSESN", "BSE"),
        ("^GSPC", "NYSE"),
        ("^IXIC", "NASDAQ"),
        ("AAPL", "NYSE"),
        ("VOD.L", "LSE"),
        ("ODD.XX", "NSE"),
    ],
)
def test_symbol_suffix_names_the_exchange(symbol, exchange):
    assert exchange_for_symbol(symbol) == exchange


@pytest.mark.django_db
def test_instrument_exchange_wins_over_the_suffix():
    InstrumentFactory(symbol="INFY", exchange="NSE")
    InstrumentFactory(symbol="^GSPC", exchange="NYSE")
    assert calendar_for_symbol("INFY").tz.key == "Asia/Kolkata"  # a bare symbol would otherwise be NYSE
    assert calendar_for_symbol("^GSPC").tz.key == "America/New_York"
    assert calendar_for_symbol("AAPL").exchange == "NYSE"  # not in the catalogue: by suffix


@pytest.mark.django_db
def test_bse_shares_nse_hours_and_holidays():
    nse, bse = calendar_for("NSE"), calendar_for("bse")
    assert bse.exchange == "BSE"
    assert (bse.tz, bse.open, bse.close) == (nse.tz, nse.open, nse.close)
    assert set(nse.holidays) <= set(bse.holidays)
    assert not bse.is_trading_day(date(2026, 11, 24))  # Guru Nanak Jayanti, from NSE's table


@pytest.mark.django_db
def test_unknown_exchange_is_refused():
    with pytest.raises(UnknownExchange, match="Unknown exchange 'MOON'"):
        calendar_for("MOON")


def test_a_library_calendar_built_in_an_earlier_year_is_not_used_past_its_schedule(db):
    # The library's schedule reaches about a year past the day a calendar is built; a process may run longer.
    from market import calendar as calendars

    calendars._library_calendar.cache_clear()
    with time_machine.travel(datetime(2019, 6, 3, 12, 0, tzinfo=UTC), tick=False):
        assert library_calendar("NYSE").session_hours(date(2019, 11, 29))[1].time() == time(13, 0)
    with time_machine.travel(datetime(2026, 11, 27, 15, 0, tzinfo=UTC), tick=False):
        nyse = library_calendar("NYSE")
        assert nyse.session_hours(date(2026, 11, 27))[1].time() == time(13, 0)  # the day after Thanksgiving
        assert not nyse.is_trading_day(date(2026, 12, 25))
        assert calendar_for("NYSE").status(datetime(2026, 11, 27, 18, 30, tzinfo=UTC)).reason == "after hours"


def test_nyse_sessions_holidays_and_early_closes_come_from_the_library():
    nyse = library_calendar("NYSE")
    assert nyse.tz.key == "America/New_York"
    assert (nyse.open, nyse.close) == (time(9, 30), time(16, 0))
    assert nyse.holidays[date(2019, 1, 1)] == "New Year's Day"
    assert not nyse.is_trading_day(date(2018, 12, 5))  # national day of mourning (President Bush)
    _, closes_at = nyse.session_hours(date(2018, 11, 23))  # the day after Thanksgiving
    assert closes_at.time() == time(13, 0)
    assert nyse.next_open(datetime(2018, 12, 31, 21, 0, tzinfo=UTC)) == datetime(
        2019, 1, 2, 14, 30, tzinfo=UTC
    )
    status = nyse.status(datetime(2018, 11, 23, 18, 30, tzinfo=UTC))  # 13:30 New York, after the early close
    assert (status.is_open, status.reason) == (False, "after hours")


def test_bars_on_the_nyse_clock():
    nyse = library_calendar("NYSE")
    last_2018 = datetime(2018, 12, 31, 5, 0, tzinfo=UTC)  # the daily bar: midnight in New York
    assert bar_close(nyse, Timeframe.D1, last_2018) == datetime(2018, 12, 31, 21, 0, tzinfo=UTC)
    assert bars_ahead(nyse, Timeframe.D1, last_2018, 1) == datetime(2019, 1, 2, 5, 0, tzinfo=UTC)
    # The last 1H bar of an early-close day ends at 13:00 New York.
    assert bar_close(nyse, Timeframe.H1, datetime(2018, 11, 23, 17, 30, tzinfo=UTC)) == datetime(
        2018, 11, 23, 18, 0, tzinfo=UTC
    )
    mask = nyse.session_mask(
        pd.DatetimeIndex(
            [datetime(2018, 11, 23, 17, 30), datetime(2018, 11, 23, 18, 30), datetime(2018, 11, 26, 18, 30)],
            tz=UTC,
        )
    )
    assert mask.tolist() == [True, False, True]


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        # Spring forward (8 March 2026): the week of Mon 2 March opens at 05:00Z, the next at 04:00Z.
        (datetime(2026, 3, 2, 5, 0, tzinfo=UTC), datetime(2026, 3, 9, 4, 0, tzinfo=UTC)),
        # Fall back (1 November 2026): a UTC week would land at 23:00 on Sunday 1 November, the day before.
        (datetime(2026, 10, 26, 4, 0, tzinfo=UTC), datetime(2026, 11, 2, 5, 0, tzinfo=UTC)),
    ],
)
def test_weekly_bars_ahead_across_dst_is_next_mondays_local_midnight(base, expected):
    nyse = library_calendar("NYSE")
    assert bars_ahead(nyse, Timeframe.W1, base, 1) == expected


def test_weekly_and_monthly_bars_ahead_on_the_lse_across_dst():
    lse = library_calendar("LSE")
    # Mon 23 March 2026 00:00 GMT; the UK clocks go forward on 29 March: two weeks on is Mon 6 April 00:00 BST.
    assert bars_ahead(lse, Timeframe.W1, datetime(2026, 3, 23, 0, 0, tzinfo=UTC), 2) == datetime(
        2026, 4, 5, 23, 0, tzinfo=UTC
    )
    # The March bar (first trading day Mon 2 March, 00:00 GMT) to the April bar: Wed 1 April, 00:00 BST.
    assert bars_ahead(lse, Timeframe.MN1, datetime(2026, 3, 2, 0, 0, tzinfo=UTC), 1) == datetime(
        2026, 3, 31, 23, 0, tzinfo=UTC
    )
