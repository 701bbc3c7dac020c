"""A derived bar (week, month, 4H, 1H from 15m) is final when every session or slot of its period that can exist
for the series has a stored final part: those before the instrument's listing, before where the provider's
history is known to start, or before the provider's lookback floor where the parts were first fetched from it,
are not missing. Sessions that could still be fetched, and were not, still are."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import time_machine

from market.calendar import ExchangeCalendar, bundled_nse_holidays
from market.models import CandleSeries
from market.providers.errors import ProviderUnavailable
from market.tests.factories import FrameProvider, InstrumentFactory, make_candles_at, provider_configured
from market.timeframes import Timeframe

pytestmark = pytest.mark.django_db
IST = ZoneInfo("Asia/Kolkata")
NSE = ExchangeCalendar(bundled_nse_holidays())
NOW = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)  # Tuesday 1 December, 12:00 IST
LISTED = date(2026, 11, 18)  # a Wednesday


def _days(first: date, last: date) -> pd.DataFrame:
    return make_candles_at([datetime.combine(d, time(), IST) for d in NSE.trading_days(first, last)])


def _quarter_hours(first: date, last: date, *, without: tuple[datetime, ...] = ()) -> pd.DataFrame:
    stamps = []
    for day in NSE.trading_days(first, last):
        at = datetime.combine(day, time(9, 15), IST)
        while at < datetime.combine(day, time(15, 30), IST):
            if at not in without:
                stamps.append(at)
            at += timedelta(minutes=15)
    return make_candles_at(stamps, seed=2)


@pytest.fixture
def provider(monkeypatch):
    provider = FrameProvider(
        {
            ("NEWCO.NS", Timeframe.D1): _days(LISTED, date(2026, 11, 30)),
            ("TCS.NS", Timeframe.D1): _days(date(2026, 9, 1), date(2026, 11, 30)),
        }
    )
    provider_configured(monkeypatch, provider)
    return provider


@pytest.fixture
def now():
    with time_machine.travel(NOW, tick=False):
        yield


def _finals(client, query: str) -> list[tuple[str, bool]]:
    response = client.get(f"/api/market/historical/{query}")
    assert response.status_code == 200, response.content
    return [(c["timestamp"][:16], c["final"]) for c in response.json()["candles"]]


def test_the_listing_week_and_month_of_a_stock_listed_on_a_wednesday_are_final(auth_client, provider, now):
    InstrumentFactory(symbol="NEWCO.NS", listed_on=LISTED)
    # Read from the Monday: the provider's first bar two days later is no proof of where its history starts, the
    # listing date is. Monday and Tuesday were never sessions of this stock.
    assert _finals(auth_client, "NEWCO?timeframe=1W&start=2026-11-16&end=2026-11-27") == [
        ("2026-11-18T00:00", True),
        ("2026-11-23T00:00", True),
    ]
    assert _finals(auth_client, "NEWCO?timeframe=1M&start=2026-11-01&end=2026-11-30") == [
        ("2026-11-18T00:00", True)
    ]


def test_the_first_week_is_final_where_the_provider_was_seen_to_start(auth_client, provider, now):
    # Not in the catalogue: no listing date. The default history read finds nothing for years before the 18th,
    # so the series' history starts there; the very read that learnt it says so.
    InstrumentFactory(symbol="NEWCO.NS", listed_on=None)
    assert _finals(auth_client, "NEWCO?timeframe=1W&limit=3") == [
        ("2026-11-18T00:00", True),
        ("2026-11-23T00:00", True),
        ("2026-11-30T00:00", False),  # this week has more sessions to come
    ]
    series = CandleSeries.objects.get(symbol="NEWCO.NS", timeframe="1D")
    assert series.history_starts_at == datetime.combine(LISTED, time(), IST)


def test_sessions_not_fetched_yet_still_leave_the_week_incomplete(auth_client, provider, now):
    # TCS traded all week; only its days from Wednesday were read, and the provider is down when the week is.
    InstrumentFactory(symbol="TCS.NS", listed_on=date(2004, 8, 25))
    assert len(_finals(auth_client, "TCS?timeframe=1D&start=2026-11-18&end=2026-11-20")) == 3
    provider.fail = ProviderUnavailable("Yahoo timed out")
    response = auth_client.get("/api/market/historical/TCS?timeframe=1W&start=2026-11-16&end=2026-11-20")
    assert response.json()["stale"] is True
    assert [(c["date"], c["final"]) for c in response.json()["candles"]] == [("2026-11-18", False)]


def test_another_providers_history_start_excuses_no_session(auth_client, provider, now):
    InstrumentFactory(symbol="TCS.NS", listed_on=None)
    _finals(auth_client, "TCS?timeframe=1D&start=2026-11-18&end=2026-11-20")
    CandleSeries.objects.filter(symbol="TCS.NS", timeframe="1D").update(
        history_starts_at=datetime.combine(LISTED, time(), IST), history_source="csv"
    )
    provider.fail = ProviderUnavailable("Yahoo timed out")
    assert _finals(auth_client, "TCS?timeframe=1W&start=2026-11-16&end=2026-11-20") == [
        ("2026-11-18T00:00", False)
    ]


# Yahoo serves 15m bars for 60 days: read on Monday 30 November at 12:00 IST, the floor is 1 October 12:01 IST.
MONDAY = datetime(2026, 11, 30, 6, 30, tzinfo=UTC)


@pytest.fixture
def quarters(provider):
    provider.frames[("TCS.NS", Timeframe.M15)] = _quarter_hours(
        date(2026, 9, 28), date(2026, 11, 27), without=(datetime(2026, 10, 5, 13, 30, tzinfo=IST),)
    )
    provider.timeframes = frozenset({Timeframe.M15, Timeframe.D1})  # no hourly bars: 1H is built too
    return provider


def test_the_oldest_hours_at_the_lookback_floor_are_final(auth_client, quarters):
    InstrumentFactory(symbol="TCS.NS", listed_on=date(2004, 8, 25))
    with time_machine.travel(MONDAY, tick=False):
        # 15m bars from 12:15 only: the 09:15 four hours stand for all the quarters that can be had.
        assert _finals(auth_client, "TCS?timeframe=4H&start=2026-10-01&end=2026-10-01") == [
            ("2026-10-01T09:15", True),
            ("2026-10-01T13:15", True),
        ]
    # Ten days later that day lies wholly beyond the floor; the bars read the same from any window.
    with time_machine.travel(MONDAY + timedelta(days=10), tick=False):
        assert _finals(auth_client, "TCS?timeframe=4H&start=2026-10-01&end=2026-10-01") == [
            ("2026-10-01T09:15", True),
            ("2026-10-01T13:15", True),
        ]
        assert _finals(auth_client, "TCS?timeframe=4H&start=2026-10-01&end=2026-10-05")[:2] == [
            ("2026-10-01T09:15", True),
            ("2026-10-01T13:15", True),
        ]


def test_the_first_hour_at_the_lookback_floor_is_final(auth_client, quarters):
    InstrumentFactory(symbol="TCS.NS", listed_on=date(2004, 8, 25))
    # 10:20 IST: the floor is 1 October 10:21, the first quarter stored 10:30.
    with time_machine.travel(datetime(2026, 11, 30, 4, 50, tzinfo=UTC), tick=False):
        assert _finals(auth_client, "TCS?timeframe=1H&start=2026-10-01&end=2026-10-01")[:2] == [
            ("2026-10-01T10:15", True),
            ("2026-10-01T11:15", True),
        ]


def test_a_quarter_the_provider_never_sent_beyond_the_floor_still_counts(auth_client, quarters):
    # 5 October 13:30 was fetched (within the lookback then) and the provider had none: that afternoon stands for
    # less than it claims, however old it gets.
    InstrumentFactory(symbol="TCS.NS", listed_on=date(2004, 8, 25))
    with time_machine.travel(MONDAY, tick=False):
        assert _finals(auth_client, "TCS?timeframe=4H&start=2026-10-05&end=2026-10-05") == [
            ("2026-10-05T09:15", True),
            ("2026-10-05T13:15", False),
        ]
    with time_machine.travel(MONDAY + timedelta(days=30), tick=False):
        assert _finals(auth_client, "TCS?timeframe=4H&start=2026-10-05&end=2026-10-05") == [
            ("2026-10-05T09:15", True),
            ("2026-10-05T13:15", False),
        ]


def test_quarters_not_fetched_yet_within_the_lookback_still_count(auth_client, quarters):
    InstrumentFactory(symbol="TCS.NS", listed_on=date(2004, 8, 25))
    with time_machine.travel(MONDAY, tick=False):
        # Stored from 12:00 on 5 October by a read of 15m bars; the provider is down when the 4H bars are read.
        assert _finals(auth_client, "TCS?timeframe=15m&start=2026-10-05T12:00:00%2B05:30&end=2026-10-05")
        quarters.fail = ProviderUnavailable("Yahoo timed out")
        assert _finals(auth_client, "TCS?timeframe=4H&start=2026-10-05&end=2026-10-05") == [
            ("2026-10-05T09:15", False),
            ("2026-10-05T13:15", False),  # and its 13:30 quarter was never sent
        ]


def test_the_first_4h_bar_of_a_stock_listed_at_ten_is_final_once_its_parts_are(auth_client, monkeypatch):
    """An NSE IPO's listing day trades from 10:00 (after its special pre-open): the 09:15 4H bar has every part it
    can have once 10:00 to 13:00 are in, though 09:15 to 09:45 never had a trade."""
    listed = date(2026, 11, 25)
    stamps, at = [], datetime.combine(listed, time(10, 0), IST)
    while at < datetime.combine(listed, time(15, 30), IST):
        stamps.append(at)
        at += timedelta(minutes=15)
    provider_configured(monkeypatch, FrameProvider({("NEWIPO.NS", Timeframe.M15): make_candles_at(stamps)}))
    InstrumentFactory(symbol="NEWIPO.NS", listed_on=listed)
    with time_machine.travel(datetime(2026, 11, 26, 6, 30, tzinfo=UTC), tick=False):
        assert _finals(auth_client, "NEWIPO?timeframe=4H&start=2026-11-25&end=2026-11-25") == [
            ("2026-11-25T09:15", True),
            ("2026-11-25T13:15", True),
        ]


def test_the_listing_days_first_4h_bar_still_needs_its_parts_after_the_first(auth_client, monkeypatch):
    # Listed at 10:00, but 10:30 is missing: the first bar is not complete.
    listed = date(2026, 11, 25)
    stamps, at = [], datetime.combine(listed, time(10, 0), IST)
    while at < datetime.combine(listed, time(15, 30), IST):
        if at != datetime.combine(listed, time(10, 30), IST):
            stamps.append(at)
        at += timedelta(minutes=15)
    provider_configured(monkeypatch, FrameProvider({("NEWIPO.NS", Timeframe.M15): make_candles_at(stamps)}))
    InstrumentFactory(symbol="NEWIPO.NS", listed_on=listed)
    with time_machine.travel(datetime(2026, 11, 26, 6, 30, tzinfo=UTC), tick=False):
        assert _finals(auth_client, "NEWIPO?timeframe=4H&start=2026-11-25&end=2026-11-25")[0] == (
            "2026-11-25T09:15",
            False,
        )
