"""start/end as trading days in the symbol's exchange time (issue #10): a bare date is that day on the exchange's
clock, NSE's or New York's, and `end=<date>` includes the whole day; a datetime must carry its offset."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import time_machine

from market.tests.factories import FrameProvider, make_candles, make_candles_at, provider_configured
from market.timeframes import Timeframe

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # Tuesday: every bar below has closed
DAY = date(2026, 11, 27)  # a Friday, trading on NSE and NYSE alike
DAYS = [date(2026, 11, 25), date(2026, 11, 26), DAY, date(2026, 11, 30)]  # NYSE shuts on 26 Nov
# (path symbol, stored symbol, exchange zone, session open, session close)
EXCHANGES = {
    "NSE": ("TCS.NS", "TCS.NS", ZoneInfo("Asia/Kolkata"), time(9, 15), time(15, 30)),
    "NYSE": ("AAPL", "AAPL", ZoneInfo("America/New_York"), time(9, 30), time(16, 0)),
}


def _daily(tz) -> pd.DataFrame:
    """One bar per day at the exchange's midnight, as providers stamp daily bars."""
    frame = make_candles(len(DAYS))
    frame.index = pd.DatetimeIndex([datetime.combine(d, time(), tz) for d in DAYS]).tz_convert(UTC)
    return frame.rename_axis("timestamp")


def _quarter_hours(tz, opens: time, closes: time) -> pd.DataFrame:
    """15m bars of the whole session of each day."""
    stamps = []
    for d in DAYS:
        at, end = datetime.combine(d, opens, tz), datetime.combine(d, closes, tz)
        while at < end:
            stamps.append(at)
            at += timedelta(minutes=15)
    return make_candles_at(stamps)


@pytest.fixture
def exchange(request, monkeypatch, settings):
    settings.DEFAULT_SYMBOL_SUFFIX = ""  # AAPL stays AAPL
    path, symbol, tz, opens, closes = EXCHANGES[request.param]
    provider = FrameProvider(
        {(symbol, Timeframe.D1): _daily(tz), (symbol, Timeframe.M15): _quarter_hours(tz, opens, closes)}
    )
    provider_configured(monkeypatch, provider)
    with time_machine.travel(NOW, tick=False):
        yield path, tz, opens, closes


def _get(client, url: str) -> dict:
    response = client.get(url)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize("exchange", ["NSE", "NYSE"], indirect=True)
def test_the_daily_bar_of_a_day_is_in_start_and_end_of_that_day(auth_client, exchange):
    path, tz, *_ = exchange
    body = _get(auth_client, f"/api/market/historical/{path}?timeframe=1D&start={DAY}&end={DAY}")
    assert [bar["date"] for bar in body["candles"]] == [DAY.isoformat()]
    assert body["candles"][0]["timestamp"] == datetime.combine(DAY, time(), tz).isoformat()


@pytest.mark.parametrize("exchange", ["NSE", "NYSE"], indirect=True)
def test_a_date_is_the_whole_trading_day_on_the_exchange_clock(auth_client, exchange):
    path, tz, opens, closes = exchange
    body = _get(auth_client, f"/api/market/historical/{path}?timeframe=15m&start={DAY}&end={DAY}&limit=5000")
    stamps = [datetime.fromisoformat(bar["timestamp"]) for bar in body["candles"]]
    assert {stamp.astimezone(tz).date() for stamp in stamps} == {DAY}
    assert stamps[0] == datetime.combine(DAY, opens, tz)  # from the open of that day ...
    assert stamps[-1] == datetime.combine(DAY, closes, tz) - timedelta(minutes=15)  # ... to its last bar
    assert body["candles"][0]["timestamp"].endswith(datetime.combine(DAY, opens, tz).isoformat()[-6:])


@pytest.mark.parametrize("exchange", ["NSE", "NYSE"], indirect=True)
def test_indicators_take_the_same_trading_days(auth_client, exchange):
    path, tz, opens, _ = exchange
    query = f"timeframe=15m&start={DAY}&end={DAY}&names=sma:2&limit=5000"
    body = _get(auth_client, f"/api/market/indicators/{path}?{query}")
    stamps = [datetime.fromisoformat(row["timestamp"]) for row in body["rows"]]
    assert {stamp.astimezone(tz).date() for stamp in stamps} == {DAY}
    assert stamps[0] == datetime.combine(DAY, opens, tz)
    daily = _get(auth_client, f"/api/market/indicators/{path}?timeframe=1D&start={DAY}&end={DAY}&names=sma:2")
    assert [row["date"] for row in daily["rows"]] == [DAY.isoformat()]


@pytest.mark.parametrize("exchange", ["NYSE"], indirect=True)
def test_a_datetime_with_an_offset_is_taken_as_given(auth_client, exchange):
    path, *_ = exchange
    query = "timeframe=15m&start=2026-11-27T14:00:00-05:00&end=2026-11-27T15:00:00-05:00"
    body = _get(auth_client, f"/api/market/historical/{path}?{query}")
    assert [bar["timestamp"] for bar in body["candles"]] == [
        f"2026-11-27T{clock}-05:00" for clock in ("14:00:00", "14:15:00", "14:30:00", "14:45:00")
    ]


@pytest.mark.parametrize("endpoint", ["historical", "indicators"])
def test_a_datetime_without_an_offset_is_a_400_that_says_so(auth_client, endpoint):
    response = auth_client.get(f"/api/market/{endpoint}/TCS?names=sma:5&start=2026-11-27T09:15:00")
    assert response.status_code == 400
    assert "UTC offset" in str(response.json()["error"]["details"]["start"])


@pytest.mark.parametrize("endpoint", ["historical", "indicators"])
def test_an_offset_whose_plus_the_url_turned_into_a_space_is_a_400_that_says_how_to_send_it(
    auth_client, endpoint
):
    """`start=2026-11-27T09:15:00+05:30` typed into curl arrives as "…09:15:00 05:30": "use a datetime with a
    UTC offset" told people to send what they had sent."""
    response = auth_client.get(f"/api/market/{endpoint}/TCS?names=sma:5&start=2026-11-27T09:15:00+05:30")
    assert response.status_code == 400
    [message] = response.json()["error"]["details"]["start"]
    assert "%2B" in message
