import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from market.calendar import library_calendar
from market.providers.base import CANDLE_COLUMNS, LookbackExceeded, validate_candles
from market.providers.errors import SymbolNotFound
from market.providers.synthetic import SyntheticProvider
from market.timeframes import Timeframe

IST = ZoneInfo("Asia/Kolkata")
NOW = datetime(2026, 11, 11, 6, 0, tzinfo=UTC)  # Wednesday 11:30 IST, market open
SYMBOLS = {"RELIANCE.NS", "TCS.NS", "^NSEI"}


def ist(*args: int) -> datetime:
    return datetime(*args, tzinfo=IST)


@pytest.fixture
def make_provider(nse_calendar):
    def make(now: datetime = NOW, **options) -> SyntheticProvider:
        settings = {"symbols": SYMBOLS, "calendar": nse_calendar, "clock": lambda: now}
        settings.update(options)
        return SyntheticProvider(**settings)

    return make


@pytest.fixture
def provider(make_provider) -> SyntheticProvider:
    return make_provider()


@pytest.mark.parametrize("timeframe", list(Timeframe))
def test_same_request_gives_the_same_bars(make_provider, timeframe):
    first = make_provider().fetch_candles("RELIANCE.NS", timeframe)
    second = make_provider().fetch_candles("RELIANCE.NS", timeframe)
    assert not first.empty
    pd.testing.assert_frame_equal(first, second)


@pytest.mark.parametrize(
    ("timeframe", "start", "end"),
    [
        (Timeframe.D1, ist(2025, 3, 5), ist(2025, 6, 18)),
        (Timeframe.W1, ist(2024, 1, 10), ist(2024, 5, 1)),
        (Timeframe.H1, ist(2026, 2, 3, 11, 0), ist(2026, 2, 20)),
        (Timeframe.M15, ist(2026, 10, 1), ist(2026, 10, 9, 13, 0)),
        (Timeframe.M5, ist(2026, 11, 2, 10, 3), ist(2026, 11, 4, 14, 0)),
        (Timeframe.M1, ist(2026, 11, 5, 9, 30), ist(2026, 11, 5, 10, 0)),
    ],
)
def test_sub_range_equals_the_slice_of_a_larger_request(provider, timeframe, start, end):
    whole = provider.fetch_candles("TCS.NS", timeframe)
    part = provider.fetch_candles("TCS.NS", timeframe, start=start, end=end)
    expected = whole[(whole.index >= start) & (whole.index < end)]
    assert not part.empty
    pd.testing.assert_frame_equal(part, expected)


@pytest.mark.parametrize("timeframe", [Timeframe.D1, Timeframe.W1, Timeframe.M5])
def test_bars_do_not_change_as_time_passes(make_provider, timeframe):
    earlier = make_provider(now=NOW).fetch_candles("RELIANCE.NS", timeframe, start=ist(2026, 10, 5))
    later = make_provider(now=NOW + timedelta(days=20)).fetch_candles(
        "RELIANCE.NS", timeframe, start=ist(2026, 10, 5), end=NOW
    )
    # Later, bars that were still forming at NOW have closed too; every earlier bar is unchanged.
    assert len(later) >= len(earlier) > 0
    pd.testing.assert_frame_equal(earlier, later.iloc[: len(earlier)])


def test_seed_and_symbol_change_the_path(make_provider):
    base = make_provider().fetch_candles("RELIANCE.NS", Timeframe.D1)
    other_seed = make_provider(seed=1).fetch_candles("RELIANCE.NS", Timeframe.D1)
    other_symbol = make_provider().fetch_candles("TCS.NS", Timeframe.D1)
    assert not np.allclose(base["close"], other_seed["close"])
    assert not np.allclose(base["close"], other_symbol["close"])


def test_daily_bars_fall_on_trading_days_only(provider, nse_calendar):
    candles = provider.fetch_candles("RELIANCE.NS", Timeframe.D1, start=ist(2026, 1, 1))
    days = list(candles.index.tz_convert(IST).date)
    assert days == nse_calendar.trading_days(date(2026, 1, 1), date(2026, 11, 9))
    assert date(2026, 11, 24) not in days and date(2026, 10, 20) not in days
    assert (candles.index.tz_convert(IST).hour == 0).all()  # stamped at local midnight


def test_intraday_bars_are_the_session_bars_of_trading_days(provider, nse_calendar):
    candles = provider.fetch_candles(
        "RELIANCE.NS", Timeframe.M5, start=ist(2026, 11, 6), end=ist(2026, 11, 10)
    )
    expected = [
        *nse_calendar.session_bars(date(2026, 11, 6), timedelta(minutes=5)),
        *nse_calendar.session_bars(date(2026, 11, 9), timedelta(minutes=5)),
    ]
    assert candles.index.to_pydatetime().tolist() == expected
    local = candles.index.tz_convert(IST)
    assert (local.hour * 60 + local.minute >= 9 * 60 + 15).all()
    assert (local.hour * 60 + local.minute < 15 * 60 + 30).all()


@pytest.mark.parametrize("timeframe", list(Timeframe))
@pytest.mark.parametrize("symbol", sorted(SYMBOLS))
def test_candles_follow_the_frame_convention_and_are_valid(provider, timeframe, symbol):
    candles = provider.fetch_candles(symbol, timeframe)
    _, rejected = validate_candles(candles)
    assert rejected.empty
    assert list(candles.columns) == list(CANDLE_COLUMNS)
    assert candles.dtypes.astype(str).tolist() == ["float64"] * 4 + ["int64"]
    assert candles.index.name == "timestamp" and str(candles.index.tz) == "UTC"
    assert candles.index.is_monotonic_increasing and candles.index.is_unique
    if symbol.startswith("^"):
        assert (candles["volume"] == 0).all()
    else:
        assert (candles["volume"] > 0).all()


def test_intraday_volume_is_u_shaped(provider):
    candles = provider.fetch_candles("TCS.NS", Timeframe.M15, start=ist(2026, 9, 15))
    local = candles.index.tz_convert(IST)
    slot = local.hour * 60 + local.minute
    volume = candles["volume"]
    opening = volume[slot == 9 * 60 + 15].mean()
    closing = volume[slot == 15 * 60 + 15].mean()
    midday = volume[(slot >= 12 * 60) & (slot < 13 * 60)].mean()
    assert opening > 1.5 * midday
    assert closing > 1.5 * midday


def test_prices_stay_in_a_realistic_band_over_ten_years(provider):
    closes = provider.fetch_candles("RELIANCE.NS", Timeframe.D1)["close"]
    assert closes.max() / closes.min() < 20
    daily_moves = closes.pct_change().dropna().abs()
    assert daily_moves.median() < 0.03


def test_weekly_bars_aggregate_the_daily_bars_of_a_week(provider):
    weekly = provider.fetch_candles("RELIANCE.NS", Timeframe.W1, start=ist(2026, 3, 30), end=ist(2026, 4, 30))
    daily = provider.fetch_candles("RELIANCE.NS", Timeframe.D1, start=ist(2026, 4, 6), end=ist(2026, 4, 11))
    week = weekly.loc[ist(2026, 4, 6)]  # Monday after Good Friday
    assert week["open"] == daily["open"].iloc[0]
    assert week["close"] == daily["close"].iloc[-1]
    assert week["high"] == daily["high"].max()
    assert week["low"] == daily["low"].min()
    assert week["volume"] == daily["volume"].sum()
    assert (weekly.index.tz_convert(IST).day_of_week == 0).all()
    assert ist(2026, 3, 30) in weekly.index  # the Good Friday week still has its Monday stamp


def test_no_bars_that_have_not_closed_yet(provider):
    daily = provider.fetch_candles("RELIANCE.NS", Timeframe.D1)
    five = provider.fetch_candles("RELIANCE.NS", Timeframe.M5)
    weekly = provider.fetch_candles("RELIANCE.NS", Timeframe.W1)
    assert daily.index[-1] == ist(2026, 11, 9)  # 10 Nov is a holiday, 11 Nov is still trading
    assert five.index[-1] == ist(2026, 11, 11, 11, 25)  # the 11:25 bar closed at 11:30
    assert weekly.index[-1] == ist(2026, 11, 2)  # the current week is not over
    assert provider.fetch_candles("RELIANCE.NS", Timeframe.D1, start=NOW, end=NOW + timedelta(days=30)).empty


def test_last_hourly_bar_closes_with_the_session(make_provider):
    candles = make_provider(now=ist(2026, 11, 11, 15, 30)).fetch_candles("RELIANCE.NS", Timeframe.H1)
    assert candles.index[-1] == ist(2026, 11, 11, 15, 15)
    daily = make_provider(now=ist(2026, 11, 11, 15, 30)).fetch_candles("RELIANCE.NS", Timeframe.D1)
    assert daily.index[-1] == ist(2026, 11, 11)


def test_history_is_limited_to_history_days(make_provider):
    candles = make_provider(history_days=30).fetch_candles("RELIANCE.NS", Timeframe.D1)
    assert candles.index[0] >= NOW - timedelta(days=31)
    assert (
        make_provider(history_days=30)
        .fetch_candles("RELIANCE.NS", Timeframe.D1, start=ist(2020, 1, 1), end=ist(2020, 2, 1))
        .empty
    )


def test_unknown_symbol_is_not_found(provider):
    with pytest.raises(SymbolNotFound):
        provider.fetch_candles("INFY.NS", Timeframe.D1)


def test_symbols_callable_is_read_on_every_request(nse_calendar):
    catalogue = {"RELIANCE.NS"}
    provider = SyntheticProvider(symbols=lambda: catalogue, calendar=nse_calendar, clock=lambda: NOW)
    with pytest.raises(SymbolNotFound):
        provider.fetch_candles("INFY.NS", Timeframe.D1)
    catalogue.add("INFY.NS")
    assert not provider.fetch_candles("INFY.NS", Timeframe.D1).empty


def test_intraday_lookback_mirrors_yahoo(provider):
    with pytest.raises(LookbackExceeded, match="1m candles are available for the last 30 days only"):
        provider.fetch_candles("RELIANCE.NS", Timeframe.M1, start=NOW - timedelta(days=31))


def test_naive_datetimes_are_rejected(provider):
    with pytest.raises(ValueError, match="aware"):
        provider.fetch_candles("RELIANCE.NS", Timeframe.D1, start=datetime(2026, 1, 1))


def test_quote_from_the_last_two_sessions_while_the_market_is_closed(make_provider):
    provider = make_provider(now=ist(2026, 11, 11, 8, 0))  # Wednesday before the open
    quote = provider.fetch_quote("RELIANCE.NS")
    daily = provider.fetch_candles("RELIANCE.NS", Timeframe.D1, start=ist(2026, 11, 1))
    assert quote.price == daily["close"].iloc[-1]
    assert quote.previous_close == daily["close"].iloc[-2]
    assert quote.change == pytest.approx(daily["close"].iloc[-1] - daily["close"].iloc[-2])
    assert quote.timestamp == ist(2026, 11, 9)
    assert (quote.source, quote.currency) == ("synthetic", "INR")


def test_quote_during_a_session_is_the_day_so_far_as_the_minute_bars_show_it(provider):
    """At 11:30 on an open day the quote is today's price, not the last close repeated until the close: the
    same price the 1m bars show, against the previous session's close."""
    quote = provider.fetch_quote("RELIANCE.NS")
    minutes = provider.fetch_candles("RELIANCE.NS", Timeframe.M1, start=ist(2026, 11, 11))
    daily = provider.fetch_candles("RELIANCE.NS", Timeframe.D1, start=ist(2026, 11, 1))
    assert minutes.index[-1] == ist(2026, 11, 11, 11, 29)
    assert quote.timestamp == ist(2026, 11, 11)
    assert quote.price == minutes["close"].iloc[-1]
    assert (quote.open, quote.high, quote.low) == (
        minutes["open"].iloc[0],
        minutes["high"].max(),
        minutes["low"].min(),
    )
    assert quote.volume == minutes["volume"].sum()
    assert quote.previous_close == daily["close"].iloc[-1]  # Monday's: Tuesday 10 November was a holiday
    assert quote.change == pytest.approx(quote.price - quote.previous_close)
    assert quote.change_percent == pytest.approx((quote.price / quote.previous_close - 1) * 100)


def test_quote_after_the_close_is_the_days_bar(make_provider):
    provider = make_provider(now=ist(2026, 11, 11, 16, 0))
    quote = provider.fetch_quote("RELIANCE.NS")
    daily = provider.fetch_candles("RELIANCE.NS", Timeframe.D1, start=ist(2026, 11, 1))
    assert quote.timestamp == ist(2026, 11, 11) == daily.index[-1]
    assert (quote.price, quote.volume) == (daily["close"].iloc[-1], daily["volume"].iloc[-1])


def test_ten_years_of_daily_bars_take_under_50ms(provider):
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        candles = provider.fetch_candles("RELIANCE.NS", Timeframe.D1)
        timings.append(time.perf_counter() - started)
    assert len(candles) > 2400
    assert min(timings) < 0.05


def test_demo_catalogue_sits_at_plausible_relative_levels(make_provider):
    demo = {"^NSEI", "^BSESN", "RELIANCE.NS", "TCS.NS", "SBIN.NS"}
    provider = make_provider(symbols=demo)
    closes = {symbol: provider.fetch_candles(symbol, Timeframe.D1)["close"] for symbol in demo}
    # Each path wanders on its own over ten years; today and over the last year the order is the usual one.
    assert closes["^BSESN"].iloc[-1] > 2 * closes["^NSEI"].iloc[-1]  # SENSEX well above NIFTY 50
    assert closes["^BSESN"].iloc[-250:].median() > 2 * closes["^NSEI"].iloc[-250:].median()
    assert 10_000 < closes["^NSEI"].iloc[-1] < 50_000
    assert 300 < closes["SBIN.NS"].iloc[-1] < 2_000
    assert 1_000 < closes["TCS.NS"].iloc[-1] < 8_000
    assert closes["^NSEI"].iloc[-1] > 3 * closes["TCS.NS"].iloc[-1]


@pytest.mark.parametrize(
    ("symbol", "exchange", "currency"),
    [("^GSPC", "NYSE", "USD"), ("AAPL", "NASDAQ", "USD"), ("VOD.L", "LSE", "GBp"), ("^FTSE", "LSE", "GBP")],
)
def test_a_quote_is_in_its_exchanges_currency(make_provider, symbol, exchange, currency):
    """Quoted as Yahoo quotes them: New York in dollars, London equities in pence and its indices in pounds."""
    calendar = library_calendar(exchange)
    provider = make_provider(
        now=datetime(2026, 11, 11, 23, 0, tzinfo=UTC), symbols=[symbol], calendar=calendar
    )
    assert provider.fetch_quote(symbol).currency == currency


def test_new_york_bars_open_at_0930_local_on_both_sides_of_the_dst_change(make_provider):
    """6 March 2026 is EST, 9 March EDT: the session (and its bars) start at 09:30 New York both days, an hour
    apart in UTC; the daily bars open at New York's midnight."""
    provider = make_provider(
        now=datetime(2026, 3, 12, 0, 0, tzinfo=UTC), symbols=["AAPL"], calendar=library_calendar("NYSE")
    )
    window = {"start": datetime(2026, 3, 6, 0, 0, tzinfo=UTC), "end": datetime(2026, 3, 10, 0, 0, tzinfo=UTC)}
    hours = provider.fetch_candles("AAPL", Timeframe.H1, **window)
    new_york = hours.index.tz_convert("America/New_York")
    assert sorted(set(new_york.date)) == [date(2026, 3, 6), date(2026, 3, 9)]
    for day in (6, 9):
        bars = new_york[new_york.day == day]
        assert [t.strftime("%H:%M") for t in bars] == [
            "09:30",
            "10:30",
            "11:30",
            "12:30",
            "13:30",
            "14:30",
            "15:30",
        ]
    assert hours.index[0] == datetime(2026, 3, 6, 14, 30, tzinfo=UTC)
    assert hours.index[-7] == datetime(2026, 3, 9, 13, 30, tzinfo=UTC)
    days = provider.fetch_candles("AAPL", Timeframe.D1, **window)
    assert list(days.index) == [datetime(2026, 3, 6, 5, tzinfo=UTC), datetime(2026, 3, 9, 4, tzinfo=UTC)]
