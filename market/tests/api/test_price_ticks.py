"""Traded prices read at the instrument's tick (issue #10): 0.05 for NSE equities unless staff set another one,
two decimals for indices; model outputs stay at two decimals."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest
import time_machine
from django.test import Client

from market import sources
from market.models import Instrument
from market.tests.factories import FrameProvider, InstrumentFactory, provider_configured
from market.timeframes import Timeframe

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 1, 6, 30, tzinfo=UTC)  # Monday 12:00 IST, NSE open
# Raw prices as a provider hands them over, with what an NSE equity (tick 0.05) shows for each.
RAW = [1431.6999999999998, 1431.72, 1431.73, 1431.76]
AT_TICK = [1431.7, 1431.7, 1431.75, 1431.75]


def _bars(symbol_prices: list[float]) -> pd.DataFrame:
    """Daily bars whose open, high, low and close are each of the given prices (high/low stay valid)."""
    start = NOW - timedelta(days=len(symbol_prices) + 1)
    index = pd.DatetimeIndex(
        [start.replace(hour=18, minute=30) + timedelta(days=i) for i in range(len(symbol_prices))],
        name="timestamp",
    ).as_unit("us")
    return pd.DataFrame(
        {
            "open": symbol_prices,
            "high": [p + 0.0001 for p in symbol_prices],
            "low": [p - 0.0001 for p in symbol_prices],
            "close": symbol_prices,
            "volume": [1000] * len(symbol_prices),
        },
        index=index,
    )


@pytest.fixture
def provider(monkeypatch):
    frames = FrameProvider({(symbol, Timeframe.D1): _bars(RAW) for symbol in ("TCS.NS", "^NSEI", "MRF.NS")})
    provider_configured(monkeypatch, frames)
    with time_machine.travel(NOW, tick=False):
        yield frames


def _closes(client, symbol: str, extra: str = "") -> list[float]:
    body = client.get(f"/api/market/historical/{symbol}?timeframe=1D&limit=10{extra}").json()
    if "candles" not in body:
        raise AssertionError(body)
    return [c["close"] for c in body["candles"]]


def test_nse_equity_candles_are_rounded_to_the_005_tick(auth_client, provider):
    InstrumentFactory(symbol="TCS.NS", exchange="NSE", kind=Instrument.Kind.EQUITY)
    candles = auth_client.get("/api/market/historical/TCS?limit=10").json()["candles"]
    assert [c["close"] for c in candles] == AT_TICK
    assert [c["open"] for c in candles] == AT_TICK
    assert [c["high"] for c in candles] == AT_TICK and [c["low"] for c in candles] == AT_TICK
    columns = auth_client.get("/api/market/historical/TCS?limit=10&format=columns").json()["candles"]
    assert columns["close"] == AT_TICK


def test_an_uncatalogued_nse_equity_gets_the_default_tick(auth_client, provider):
    assert _closes(auth_client, "TCS") == AT_TICK


def test_an_index_keeps_two_decimals(auth_client, provider):
    InstrumentFactory(symbol="^NSEI", exchange="NSE", kind=Instrument.Kind.INDEX)
    assert _closes(auth_client, "^NSEI") == [1431.7, 1431.72, 1431.73, 1431.76]


def test_a_tick_staff_set_in_admin_applies_at_once(auth_client, provider, staff_user):
    mrf = InstrumentFactory(symbol="MRF.NS", exchange="NSE", kind=Instrument.Kind.EQUITY)
    assert _closes(auth_client, "MRF") == AT_TICK  # cached now, and the catalogue map too
    staff_user.is_superuser = True
    staff_user.save()
    admin = Client()
    admin.force_login(staff_user)
    form = {
        "symbol": mrf.symbol,
        "name": mrf.name,
        "exchange": "NSE",
        "currency": "INR",
        "kind": "equity",
        "active": "on",
        "series": "",
        "tick_size": "0.25",
    }
    listing = admin.get("/admin/market/instrument/").content.decode()
    assert '<td class="field-tick">0.05 (default)</td>' in listing
    response = admin.post(f"/admin/market/instrument/{mrf.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert '<td class="field-tick">0.25</td>' in admin.get("/admin/market/instrument/").content.decode()
    assert Instrument.objects.get(pk=mrf.pk).tick_size == Decimal("0.25")
    assert _closes(auth_client, "MRF") == [1431.75, 1431.75, 1431.75, 1431.75]


def test_a_non_positive_tick_is_refused_by_the_admin_form(staff_user):
    staff_user.is_superuser = True
    staff_user.save()
    admin = Client()
    admin.force_login(staff_user)
    mrf = InstrumentFactory(symbol="MRF.NS")
    form = {"symbol": "MRF.NS", "name": "MRF", "exchange": "NSE", "currency": "INR", "kind": "equity"}
    response = admin.post(f"/admin/market/instrument/{mrf.pk}/change/", {**form, "tick_size": "0"})
    assert response.status_code == 200 and "tick_size" in response.context["adminform"].form.errors


def test_quote_prices_at_the_tick_and_the_change_at_two_decimals(auth_client, provider):
    quote = auth_client.get("/api/market/quote/TCS").json()
    assert quote["price"] == 1431.75  # 1431.76
    assert quote["previous_close"] == 1431.75  # 1431.73
    assert (quote["open"], quote["high"], quote["low"]) == (1431.75, 1431.75, 1431.75)
    assert quote["change"] == 0.03  # a difference, not a traded price


def test_index_quote_keeps_two_decimals(auth_client, provider):
    quote = auth_client.get("/api/market/quote/%5ENSEI").json()
    assert quote["price"] == 1431.76 and quote["previous_close"] == 1431.73


def test_the_catalogue_map_costs_one_query_for_many_symbols(django_assert_num_queries):
    InstrumentFactory(symbol="TCS.NS", exchange="NSE")
    InstrumentFactory(symbol="^NSEI", exchange="NSE", kind=Instrument.Kind.INDEX)
    InstrumentFactory(symbol="MRF.NS", exchange="NSE", tick_size=Decimal("0.10"))
    with django_assert_num_queries(1):
        ticks = [sources.price_tick_for_symbol(s) for s in ("TCS.NS", "^NSEI", "MRF.NS", "INFY.NS", "AAPL")]
        exchanges = [sources.exchange_of(s) for s in ("TCS.NS", "^NSEI", "MRF.NS")]
    assert ticks == [Decimal("0.05"), None, Decimal("0.10"), Decimal("0.05"), None]
    assert exchanges == ["NSE", "NSE", "NSE"]
