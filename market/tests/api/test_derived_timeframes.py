"""Timeframes built from finer stored bars on read (issue #13): weeks and months from days, 1H and 4H from 15m
bars aligned to the NSE session (09:15), marked `derived_from`, final only when every part is."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import time_machine
from django.core.management import CommandError, call_command

from market.calendar import ExchangeCalendar, bundled_nse_holidays
from market.presentation import price_rounder
from market.providers.errors import ProviderUnavailable
from market.services import candles_upsert
from market.tests.factories import FrameProvider, make_candles_at, provider_configured
from market.timeframes import Timeframe

pytestmark = pytest.mark.django_db
tick = price_rounder(Decimal("0.05"))  # TCS.NS, an NSE equity: prices at its tick
IST = ZoneInfo("Asia/Kolkata")
NSE = ExchangeCalendar(bundled_nse_holidays())
NOW = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)  # Tuesday 12:00 IST


def _days(first: date, last: date) -> pd.DataFrame:
    """Daily bars of NSE's trading days, stamped at IST midnight like a provider's."""
    return make_candles_at([datetime.combine(d, time(), IST) for d in NSE.trading_days(first, last)])


def _quarter_hours(days: list[date]) -> pd.DataFrame:
    """15m bars over whole NSE sessions: 09:15 ... 15:15 IST."""
    stamps = []
    for day in days:
        at = datetime.combine(day, time(9, 15), IST)
        while at < datetime.combine(day, time(15, 30), IST):
            stamps.append(at)
            at += timedelta(minutes=15)
    return make_candles_at(stamps, seed=2)


DAILY = _days(date(2026, 9, 1), date(2026, 11, 30))
QUARTERS = _quarter_hours([date(2026, 11, 27), date(2026, 11, 30)])


def _expected(parts: pd.DataFrame, key) -> list[tuple]:
    """Bars computed plainly: per group of parts, first open, highest high, lowest low, last close, summed volume;
    stamped at the first part."""
    rows = {}
    for ts, bar in parts.iterrows():
        rows.setdefault(key(ts.astimezone(IST)), []).append((ts, bar))
    out = []
    for group in rows.values():
        bars = [bar for _, bar in group]
        out.append(
            (
                group[0][0].astimezone(IST).isoformat(),
                tick(bars[0]["open"]),
                tick(max(b["high"] for b in bars)),
                tick(min(b["low"] for b in bars)),
                tick(bars[-1]["close"]),
                int(sum(b["volume"] for b in bars)),
            )
        )
    return out


def _ohlcv(body: dict) -> list[tuple]:
    return [
        (c["timestamp"], c["open"], c["high"], c["low"], c["close"], c["volume"]) for c in body["candles"]
    ]


@pytest.fixture
def provider(monkeypatch):
    provider = FrameProvider({("TCS.NS", Timeframe.D1): DAILY, ("TCS.NS", Timeframe.M15): QUARTERS})
    provider_configured(monkeypatch, provider)
    return provider


@pytest.fixture
def now():
    with time_machine.travel(NOW, tick=False):
        yield


def _get(client, path: str) -> dict:
    response = client.get(f"/api/market/{path}")
    assert response.status_code == 200, response.content
    return response.json()


def test_weeks_are_built_from_stored_days_without_asking_the_provider(auth_client, provider, now):
    _get(auth_client, "historical/TCS?timeframe=1D&start=2026-11-02&end=2026-11-27")
    calls = len(provider.calls)
    body = _get(auth_client, "historical/TCS?timeframe=1W&start=2026-11-02&end=2026-11-27")
    assert len(provider.calls) == calls  # a week from stored days needs no request
    assert (body["derived_from"], body["source"], body["timeframe"]) == ("1D", "frame", "1W")
    november = DAILY[(DAILY.index >= "2026-11-01") & (DAILY.index < "2026-11-27T19:00Z")]
    assert _ohlcv(body) == _expected(november, key=lambda ts: ts.isocalendar()[:2])
    # 10 and 24 November are holidays: those weeks open on Monday all the same, with four sessions each.
    assert [c["date"] for c in body["candles"]] == ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23"]
    assert all(c["final"] for c in body["candles"])


def test_a_week_still_trading_is_not_final(auth_client, provider):
    # Thursday 26 November, 12:00 IST: its daily bar is still forming, Friday's is to come.
    with time_machine.travel(datetime(2026, 11, 26, 6, 30, tzinfo=UTC), tick=False):
        body = _get(auth_client, "historical/TCS?timeframe=1W&start=2026-11-16")
    assert [(c["date"], c["final"]) for c in body["candles"]] == [("2026-11-16", True), ("2026-11-23", False)]


def test_months_open_on_their_first_trading_day(auth_client, provider, now):
    body = _get(auth_client, "historical/TCS?timeframe=1M&start=2026-09-01&end=2026-11-30")
    assert body["derived_from"] == "1D"
    # 2 October (Gandhi Jayanti) is a holiday; 1 November is a Sunday.
    assert [c["date"] for c in body["candles"]] == ["2026-09-01", "2026-10-01", "2026-11-02"]
    assert _ohlcv(body) == _expected(DAILY, key=lambda ts: (ts.year, ts.month))
    assert all(c["final"] for c in body["candles"])
    columns = _get(auth_client, "historical/TCS?timeframe=1M&start=2026-09-01&end=2026-11-30&format=columns")
    assert columns["derived_from"] == "1D"
    assert columns["candles"]["date"] == ["2026-09-01", "2026-10-01", "2026-11-02"]
    assert columns["candles"]["close"] == [c["close"] for c in body["candles"]]


def test_latest_weeks_without_a_start(auth_client, provider, now):
    body = _get(auth_client, "historical/TCS?timeframe=1w&limit=2")
    assert [c["date"] for c in body["candles"]] == ["2026-11-23", "2026-11-30"]
    assert [c["final"] for c in body["candles"]] == [True, False]  # this week has more sessions to come


@pytest.fixture
def without_hours(provider):
    """A provider that serves 15m and daily bars but no hourly ones."""
    provider.timeframes = frozenset({Timeframe.M15, Timeframe.D1})
    return provider


def test_hours_are_built_from_quarter_hours_from_the_0915_open(auth_client, without_hours, now):
    body = _get(auth_client, "historical/TCS?timeframe=1H&start=2026-11-27&end=2026-11-27")
    assert body["derived_from"] == "15m" and body["source"] == "frame"
    assert [c["timestamp"][11:16] for c in body["candles"]] == [
        "09:15", "10:15", "11:15", "12:15", "13:15", "14:15", "15:15"
    ]  # fmt: skip
    day = QUARTERS[QUARTERS.index < "2026-11-27T12:00Z"]
    opened = datetime(2026, 11, 27, 9, 15, tzinfo=IST)
    assert _ohlcv(body) == _expected(day, key=lambda ts: (ts - opened) // timedelta(hours=1))
    assert all(c["final"] for c in body["candles"])  # the 15:15 hour ends with the 15:30 close
    assert {call[1] for call in without_hours.calls} == {Timeframe.M15}


def test_four_hours_from_the_open_the_second_cut_by_the_close(auth_client, provider, now):
    body = _get(auth_client, "historical/TCS?timeframe=4H&start=2026-11-27&end=2026-11-30")
    assert body["derived_from"] == "15m"
    assert [c["timestamp"] for c in body["candles"]] == [
        "2026-11-27T09:15:00+05:30",
        "2026-11-27T13:15:00+05:30",
        "2026-11-30T09:15:00+05:30",
        "2026-11-30T13:15:00+05:30",
    ]
    opened = {d: datetime.combine(d, time(9, 15), IST) for d in (date(2026, 11, 27), date(2026, 11, 30))}
    expected = _expected(QUARTERS, key=lambda ts: (ts.date(), (ts - opened[ts.date()]) // timedelta(hours=4)))
    assert _ohlcv(body) == expected
    assert "date" not in body["candles"][0]


def test_an_hour_whose_last_quarter_has_not_closed_is_not_final(auth_client, without_hours):
    with time_machine.travel(datetime(2026, 11, 27, 4, 30, tzinfo=UTC), tick=False):  # 10:00 IST
        body = _get(auth_client, "historical/TCS?timeframe=1H&start=2026-11-27")
    assert [(c["timestamp"][11:16], c["final"]) for c in body["candles"]] == [("09:15", False)]


def test_hours_beyond_the_providers_lookback_come_from_stored_quarter_hours(auth_client, provider, now):
    old = _quarter_hours([date(2024, 6, 3)])  # long past Yahoo's 730 days of hourly bars and 60 of 15m
    candles_upsert(symbol="TCS.NS", timeframe=Timeframe.M15, candles=old, source="csv")
    body = _get(auth_client, "historical/TCS?timeframe=1H&start=2024-06-03&end=2024-06-03")
    assert (body["derived_from"], body["source"], body["count"]) == ("15m", "csv", 7)
    assert body["candles"][0]["timestamp"] == "2024-06-03T09:15:00+05:30"
    assert provider.calls == []  # nothing that old can be fetched


def test_hours_within_the_lookback_are_the_providers_own(auth_client, provider, now):
    provider.frames[("TCS.NS", Timeframe.H1)] = make_candles_at([datetime(2026, 11, 27, 9, 15, tzinfo=IST)])
    body = _get(auth_client, "historical/TCS?timeframe=1H&start=2026-11-27&end=2026-11-27")
    assert body["derived_from"] is None and body["count"] == 1


def test_indicators_on_derived_weeks(auth_client, provider, now):
    query = "timeframe=1W&start=2026-09-01&end=2026-11-27&names=sma:2,rsi:3"
    body = _get(auth_client, f"indicators/TCS?{query}")
    history = _get(auth_client, "historical/TCS?timeframe=1W&start=2026-09-01&end=2026-11-27")
    assert body["derived_from"] == "1D"
    assert [row["date"] for row in body["rows"]] == [c["date"] for c in history["candles"]]
    assert body["rows"][0]["sma:2"] is None
    assert body["rows"][1]["sma:2"] == pytest.approx(
        (history["candles"][0]["close"] + history["candles"][1]["close"]) / 2, abs=0.01
    )


def test_a_sync_of_the_days_refreshes_cached_weeks(staff_client, provider, now):
    first = _get(staff_client, "historical/TCS?timeframe=1W&start=2026-11-02&end=2026-11-27")
    provider.frames[("TCS.NS", Timeframe.D1)] = DAILY.assign(close=DAILY["close"] * 1.01)
    response = staff_client.post("/api/market/sync/TCS", {"timeframe": "1D", "days": 60}, format="json")
    assert response.status_code == 200, response.content
    second = _get(staff_client, "historical/TCS?timeframe=1W&start=2026-11-02&end=2026-11-27")
    assert second["candles"][-1]["close"] != first["candles"][-1]["close"]


def test_unknown_timeframe_lists_the_valid_ones(auth_client):
    response = auth_client.get("/api/market/historical/TCS?timeframe=2D")
    assert response.status_code == 400
    message = str(response.json()["error"]["details"]["timeframe"])
    assert "1m, 5m, 15m, 1H, 4H, 1D, 1W, 1M" in message


def test_derived_timeframes_cannot_be_synced(staff_client):
    response = staff_client.post("/api/market/sync/TCS", {"timeframe": "4H"}, format="json")
    assert response.status_code == 400
    assert "1m, 5m, 15m, 1H, 1D, 1W." in str(response.json()["error"]["details"]["timeframe"])


def test_commands_and_tasks_refuse_a_timeframe_that_is_never_stored():
    with pytest.raises(CommandError, match="1M bars are built from finer stored ones on read"):
        call_command("sync_market_data", "TCS", "--timeframe", "1M", verbosity=0)
    assert Timeframe.parse("4h", stored_only=False) is Timeframe.H4


def test_weeks_from_stored_days_are_served_stale_when_the_provider_is_down(auth_client, provider, now):
    _get(auth_client, "historical/TCS?timeframe=1D&start=2026-11-02&end=2026-11-27")
    provider.fail = ProviderUnavailable("Yahoo timed out")
    body = _get(
        auth_client, "historical/TCS?timeframe=1W&start=2026-11-02"
    )  # asks for the days since the 27th
    assert body["stale"] is True and body["derived_from"] == "1D" and body["count"] == 4


def test_weeks_of_an_unknown_symbol_are_404_and_of_nothing_stored_503(auth_client, provider, now):
    assert auth_client.get("/api/market/historical/NOPE?timeframe=1W").status_code == 404
    provider.fail = ProviderUnavailable("Yahoo timed out")
    assert auth_client.get("/api/market/historical/TCS?timeframe=1M").status_code == 503


def test_a_week_the_provider_lacks_a_session_of_is_not_final(auth_client, provider, now):
    # Yahoo sent no bar for Wednesday 18 November: that week's bar stands for four of its five sessions.
    wednesday = pd.Timestamp(datetime(2026, 11, 18, tzinfo=IST))
    provider.frames[("TCS.NS", Timeframe.D1)] = DAILY.drop(index=wednesday)
    body = _get(auth_client, "historical/TCS?timeframe=1W&start=2026-11-09&end=2026-11-27")
    assert [(c["date"], c["final"]) for c in body["candles"]] == [
        ("2026-11-09", True),
        ("2026-11-16", False),
        ("2026-11-23", True),
    ]
