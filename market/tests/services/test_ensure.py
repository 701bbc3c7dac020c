"""What a read fetches before it answers: the latest `limit` bars whatever was fetched before, and a bar that was
forming when fetched gets its final values once it has closed."""

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import time_machine
from django.core.cache import cache
from django.utils import timezone

from market.models import MarketData
from market.selectors import candles_history
from market.services import candles_ensure
from market.tests.factories import FrameProvider, make_candles
from market.timeframes import Timeframe

pytestmark = pytest.mark.django_db
IST = ZoneInfo("Asia/Kolkata")


class LiveProvider(FrameProvider):
    """Yahoo as the clock stands: a bar not yet closed comes back with its values so far (here: the open, the
    price at the session's start; the close and extremes only once it has closed)."""

    def __init__(self, frames, closes):
        super().__init__(frames)
        self.closes = closes  # (timeframe, bar open) -> when that bar closes

    def fetch_candles(self, symbol, timeframe, *, start=None, end=None):
        frame = super().fetch_candles(symbol, timeframe, start=start, end=end).copy()
        now = timezone.now()
        for (tf, opened), closes in self.closes.items():
            if tf is timeframe and opened in frame.index and now < closes:
                price = frame.loc[opened, "open"]
                frame.loc[opened, ["high", "low", "close"]] = [price, price, price]
        return frame


def _bar(timeframe: Timeframe, opened: datetime) -> MarketData:
    return MarketData.objects.get(symbol="TCS.NS", timeframe=timeframe.value, timestamp=opened)


# Daily bars at IST midnights up to Wednesday 2026-06-03, whose session closes at 15:30 IST with close 118.
WEDNESDAY = datetime(2026, 6, 2, 18, 30, tzinfo=UTC)
DAILY = pd.concat(
    [
        make_candles(30, start=datetime(2026, 5, 3, 18, 30, tzinfo=UTC)),
        pd.DataFrame(
            {"open": [100.0], "high": [120.0], "low": [99.0], "close": [118.0], "volume": [5000]},
            index=pd.DatetimeIndex([WEDNESDAY], name="timestamp").as_unit("us"),
        ),
    ]
)
DAILY_CLOSES = {(Timeframe.D1, WEDNESDAY): datetime(2026, 6, 3, 10, 0, tzinfo=UTC)}
AT_1000_IST = datetime(2026, 6, 3, 4, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "later",
    [
        datetime(2026, 6, 3, 11, 30, tzinfo=UTC),  # 17:00 IST, after the close
        datetime(2026, 6, 4, 4, 0, tzinfo=UTC),  # 09:30 IST next morning, less than a day after the fetch
    ],
)
def test_a_daily_bar_fetched_in_its_session_is_refetched_once_it_has_closed(later):
    provider = LiveProvider({("TCS.NS", Timeframe.D1): DAILY}, DAILY_CLOSES)
    with time_machine.travel(AT_1000_IST, tick=False):
        candles_ensure(symbol="TCS.NS", timeframe=Timeframe.D1, start=None, end=None, provider=provider)
    assert (_bar(Timeframe.D1, WEDNESDAY).close_price, _bar(Timeframe.D1, WEDNESDAY).final) == (100.0, False)

    with time_machine.travel(later, tick=False):
        ensured = candles_ensure(
            symbol="TCS.NS", timeframe=Timeframe.D1, start=None, end=None, provider=provider
        )
    assert ensured.fetched
    assert (_bar(Timeframe.D1, WEDNESDAY).close_price, _bar(Timeframe.D1, WEDNESDAY).final) == (118.0, True)


def test_the_week_built_from_a_refetched_day_shows_its_final_close():
    provider = LiveProvider({("TCS.NS", Timeframe.D1): DAILY}, DAILY_CLOSES)
    with time_machine.travel(AT_1000_IST, tick=False):
        candles_history(symbol="TCS.NS", timeframe=Timeframe.W1, limit=2, provider=provider)
    cache.clear()  # the cached answer's time to live (real seconds) is over long before the next morning
    with time_machine.travel(datetime(2026, 6, 4, 4, 0, tzinfo=UTC), tick=False):
        body = json.loads(
            candles_history(symbol="TCS.NS", timeframe=Timeframe.W1, limit=2, provider=provider)
        )
    assert body["candles"][-1]["close"] == 118.0


# 15m bars of Wednesday 2026-06-03 from 09:15 IST; the 10:00 one closes at 10:15 IST.
QUARTERS = make_candles(4, start=datetime(2026, 6, 3, 3, 45, tzinfo=UTC), step=timedelta(minutes=15))
TEN_O_CLOCK = QUARTERS.index[-1].to_pydatetime()
QUARTER_CLOSES = {(Timeframe.M15, TEN_O_CLOCK): datetime(2026, 6, 3, 4, 45, tzinfo=UTC)}
AT_1002_IST = datetime(2026, 6, 3, 4, 32, tzinfo=UTC)


def test_an_intraday_bar_is_refetched_when_it_closes_within_a_bar_of_the_fetch():
    provider = LiveProvider({("TCS.NS", Timeframe.M15): QUARTERS}, QUARTER_CLOSES)
    with time_machine.travel(AT_1002_IST, tick=False):
        candles_ensure(symbol="TCS.NS", timeframe=Timeframe.M15, start=None, end=None, provider=provider)
    assert _bar(Timeframe.M15, TEN_O_CLOCK).final is False

    with time_machine.travel(AT_1002_IST + timedelta(minutes=14), tick=False):  # 10:16, the 10:00 bar closed
        ensured = candles_ensure(
            symbol="TCS.NS", timeframe=Timeframe.M15, start=None, end=None, provider=provider
        )
    assert ensured.fetched
    bar = _bar(Timeframe.M15, TEN_O_CLOCK)
    assert bar.final and bar.close_price == pytest.approx(QUARTERS["close"].iloc[-1])


def test_the_tail_is_not_refetched_while_no_bar_has_closed_since():
    provider = LiveProvider({("TCS.NS", Timeframe.M15): QUARTERS}, QUARTER_CLOSES)
    with time_machine.travel(AT_1002_IST, tick=False):
        candles_ensure(symbol="TCS.NS", timeframe=Timeframe.M15, start=None, end=None, provider=provider)
    asked = len(provider.calls)
    with time_machine.travel(AT_1002_IST + timedelta(minutes=10), tick=False):  # 10:12: nothing closed yet
        ensured = candles_ensure(
            symbol="TCS.NS", timeframe=Timeframe.M15, start=None, end=None, provider=provider
        )
    assert not ensured.fetched and len(provider.calls) == asked


# Daily bars (every calendar day) from 2015; "now" is 2025-06-03.
YEARS = make_candles(4000, start=datetime(2015, 1, 1, 18, 30, tzinfo=UTC))
NOW = datetime(2025, 6, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def years():
    provider = FrameProvider({("TCS.NS", Timeframe.D1): YEARS})
    with time_machine.travel(NOW, tick=False):
        yield provider


def test_the_latest_bars_after_a_narrow_read_are_the_default_history(years):
    candles_history(
        symbol="TCS.NS", timeframe=Timeframe.D1, start=datetime(2025, 5, 27, tzinfo=IST), provider=years
    )
    body = json.loads(candles_history(symbol="TCS.NS", timeframe=Timeframe.D1, limit=500, provider=years))
    assert body["count"] == 500
    assert body["candles"][0]["timestamp"] == YEARS.index[YEARS.index < NOW][-500].tz_convert(IST).isoformat()


def test_the_latest_bars_before_an_end_older_than_the_fetched_history_are_fetched(years):
    assert (
        json.loads(candles_history(symbol="TCS.NS", timeframe=Timeframe.D1, provider=years))["count"] == 500
    )
    end = datetime(2019, 1, 1, tzinfo=IST)
    body = json.loads(
        candles_history(symbol="TCS.NS", timeframe=Timeframe.D1, end=end, limit=100, provider=years)
    )
    assert (body["count"], body["stale"]) == (100, False)
    assert body["candles"][-1]["timestamp"] == datetime(2018, 12, 31, tzinfo=IST).isoformat()


def test_the_latest_bars_need_more_than_the_default_history_when_the_limit_asks(years):
    ensured = candles_ensure(
        symbol="TCS.NS", timeframe=Timeframe.D1, start=None, end=None, limit=2000, provider=years
    )
    assert ensured.fetched
    first_asked = min(start for _, _, start, _ in years.calls)
    # 2,000 NSE sessions reach back about eight years, further than the five of the default history.
    assert first_asked < NOW - timedelta(days=2000 * 7 // 5)
    body = json.loads(candles_history(symbol="TCS.NS", timeframe=Timeframe.D1, limit=2000, provider=years))
    assert body["count"] == 2000


def test_a_read_of_more_bars_than_the_default_history_holds_fetches_them(years):
    body = json.loads(candles_history(symbol="TCS.NS", timeframe=Timeframe.D1, limit=2000, provider=years))
    assert body["count"] == 2000


def test_the_latest_weeks_fetch_the_days_they_are_built_from(years):
    # 500 weeks (about ten years) of daily parts: more than the five years a read of days fetches by default.
    body = json.loads(candles_history(symbol="TCS.NS", timeframe=Timeframe.W1, limit=500, provider=years))
    assert body["derived_from"] == "1D"
    assert body["count"] == 500
    first_asked = min(start for _, _, start, _ in years.calls)
    assert first_asked < NOW - timedelta(weeks=500)


def test_a_body_whose_last_bar_is_forming_is_cached_until_that_bar_closes():
    # The response cache keeps real (Redis) time, so its expiry is read rather than waited for.
    from market.selectors import candles_history_key

    provider = LiveProvider({("TCS.NS", Timeframe.D1): DAILY}, DAILY_CLOSES)
    at = datetime(2026, 6, 3, 9, 58, tzinfo=UTC)  # 15:28 IST: Wednesday's bar closes in two minutes
    with time_machine.travel(at, tick=False):
        body = json.loads(
            candles_history(symbol="TCS.NS", timeframe=Timeframe.D1, limit=3, provider=provider)
        )
        key = candles_history_key(symbol="TCS.NS", timeframe=Timeframe.D1, limit=3)
    assert body["candles"][-1]["final"] is False
    assert 0 < cache.ttl(key) <= 121


def test_indicators_whose_last_bar_is_forming_are_cached_until_that_bar_closes():
    """The indicators endpoint is "cached like historical": a series computed over a forming bar must not be
    served after that bar has closed (the historical body beside it then shows the final bar)."""
    from market.caching import history_key
    from market.indicators import parse_indicators
    from market.selectors import indicators_history

    provider = LiveProvider({("TCS.NS", Timeframe.D1): DAILY}, DAILY_CLOSES)
    names = parse_indicators("sma:2")
    at = datetime(2026, 6, 3, 9, 58, tzinfo=UTC)  # 15:28 IST: Wednesday's bar closes in two minutes
    with time_machine.travel(at, tick=False):
        for _ in range(2):  # the first read fetches (bumping the symbol's version), the second caches
            body = indicators_history(
                symbol="TCS.NS", timeframe=Timeframe.D1, indicators=names, limit=3, provider=provider
            )
        key = history_key("TCS.NS", "1D", None, None, 3, "desc", "sma:2", "splits")
    assert body["rows"][-1]["timestamp"].startswith("2026-06-03")
    assert cache.get(key) is not None
    assert 0 < cache.ttl(key) <= 121


def test_weekly_and_monthly_bars_close_with_the_last_session_of_their_period():
    from market.bars import bar_close
    from market.sources import calendar_for

    nse = calendar_for("NSE")
    june = datetime(2026, 5, 31, 18, 30, tzinfo=UTC)  # Monday 1 June 2026, IST midnight
    assert bar_close(nse, Timeframe.MN1, june) == datetime(2026, 6, 30, 10, 0, tzinfo=UTC)  # Tuesday 30th
    assert bar_close(nse, Timeframe.W1, june) == datetime(2026, 6, 5, 10, 0, tzinfo=UTC)


def test_a_body_of_final_bars_is_cached_for_the_whole_ttl(settings):
    provider = LiveProvider({("TCS.NS", Timeframe.D1): DAILY}, DAILY_CLOSES)
    from market.selectors import candles_history_key

    with time_machine.travel(datetime(2026, 6, 3, 11, 30, tzinfo=UTC), tick=False):  # 17:00 IST
        body = json.loads(
            candles_history(symbol="TCS.NS", timeframe=Timeframe.D1, limit=3, provider=provider)
        )
        key = candles_history_key(symbol="TCS.NS", timeframe=Timeframe.D1, limit=3)
    assert body["candles"][-1]["final"] is True
    assert cache.ttl(key) > settings.MARKET_DATA_CACHE_TTL - 5
