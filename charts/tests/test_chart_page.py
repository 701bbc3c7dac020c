from datetime import UTC, datetime

import pytest
from django.test import Client

from accounts.tests.factories import UserFactory
from charts.tests.factories import seed_chart
from market.models import Instrument

pytestmark = pytest.mark.django_db

DATA = "/admin/charts/TCS.NS/data"


@pytest.fixture
def staff_browser() -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_chart_data_has_candles_signals_predictions_levels_and_backtest(staff_browser):
    candles = seed_chart()
    response = staff_browser.get(DATA, {"timeframe": "1D", "limit": 400})
    assert response.status_code == 200
    data = response.json()
    assert [c["time"] for c in data["candles"]] == sorted(c["time"] for c in data["candles"])
    assert len(data["candles"]) == len(candles) == 400
    assert data["source"] == "synthetic"
    assert data["display_offset_seconds"] == 19800  # NSE: IST
    # HOLD is no trade: only BUY and SELL become markers, each with its reasoning.
    assert [s["type"] for s in data["signals"]] == ["BUY", "SELL"]
    assert "RSI and MACD agree" in data["signals"][0]["reasoning"]
    times = {c["time"] for c in data["candles"]}
    assert all(s["time"] in times for s in data["signals"])
    realized, pending = data["predictions"]
    assert realized["lower"] < realized["predicted"] < realized["upper"] and realized["realized"] is not None
    assert pending["realized"] is None and pending["time"] > data["candles"][-1]["time"]
    # Levels of the newest signal (the HOLD on candle -20).
    assert data["levels"]["support"] == pytest.approx(candles[-20]["close"] * 0.95)
    backtest = data["backtest"]
    assert backtest["error"] is None
    assert backtest["equity"][0]["value"] == pytest.approx(1.0, abs=0.05)  # marked at its first close
    assert backtest["buy_and_hold"][0]["value"] == pytest.approx(1.0)
    assert len(backtest["buy_and_hold"]) == len(backtest["equity"])


def test_chart_data_of_a_short_range_keeps_the_backtest_to_that_range(staff_browser):
    seed_chart()
    data = staff_browser.get(DATA, {"limit": 20}).json()
    assert len(data["candles"]) == 20
    equity = data["backtest"]["equity"]
    assert equity and equity[0]["time"] >= data["candles"][0]["time"]


def test_chart_data_of_a_range_without_candles_is_empty_with_a_reason(staff_browser):
    data = staff_browser.get(DATA, {"start": "1990-01-01", "end": "1990-02-01"}).json()
    assert data["candles"] == [] and data["signals"] == []
    assert data["backtest"] == {"error": "No candles in this range.", "equity": [], "buy_and_hold": []}


def test_chart_data_of_a_derived_timeframe_draws_its_candles_without_a_backtest(staff_browser):
    seed_chart()
    data = staff_browser.get(DATA, {"timeframe": "1M", "limit": 12}).json()
    assert len(data["candles"]) == 12
    assert data["backtest"]["error"] == "No backtest on 1M bars (built from finer ones)."


def test_chart_data_rejects_bad_parameters_as_json_400(staff_browser):
    response = staff_browser.get(DATA, {"timeframe": "2D", "limit": 9000})
    assert response.status_code == 400
    assert set(response.json()["error"]["details"]) == {"timeframe", "limit"}


def test_chart_data_and_page_are_for_staff_only():
    client = Client()
    client.force_login(UserFactory(is_staff=False))
    for url in (DATA, "/admin/charts/TCS.NS/"):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_chart_page_loads_the_vendored_chart_library(staff_browser):
    html = staff_browser.get("/admin/charts/TCS.NS/?timeframe=1W").content.decode()
    assert "charts/vendor/lightweight-charts/lightweight-charts.standalone.production.js" in html
    assert '<option value="1W" selected>' in html
    assert "/admin/charts/TCS.NS/data" in html
    assert "https://" not in html


def test_chart_page_of_an_invalid_symbol_is_404(staff_browser):
    assert staff_browser.get("/admin/charts/bad%20symbol/").status_code == 404


def test_instrument_and_market_data_admin_link_to_the_chart(staff_browser):
    seed_chart()
    Instrument.objects.get_or_create(symbol="TCS.NS", defaults={"name": "TCS"})
    assert 'href="/admin/charts/TCS.NS/"' in staff_browser.get("/admin/market/instrument/").content.decode()
    assert 'href="/admin/charts/TCS.NS/?timeframe=1D"' in (
        staff_browser.get("/admin/market/marketdata/").content.decode()
    )


def _shown(data: dict, seconds: int) -> datetime:
    """Where the page draws a point of UNIX time `seconds`: shifted by the exchange's offset at that time
    (display_offsets: the offset in force from each UTC second on; without it, the single current offset)."""
    offset = data["display_offset_seconds"]
    for change in data.get("display_offsets", []):
        if change["from"] <= seconds:
            offset = change["offset"]
    return datetime.fromtimestamp(seconds + offset, UTC)


def test_chart_data_draws_each_bar_at_its_own_exchange_time_across_daylight_saving():
    """An LSE daily bar opens at midnight London time: BST (+01:00) in summer, GMT in winter. Viewed in January,
    one offset for every point (January's) drew each summer bar at 23:00 the evening before, on the wrong day."""
    import time_machine

    Instrument.objects.create(symbol="VOD.L", name="Vodafone", exchange="LSE")
    with time_machine.travel(datetime(2027, 1, 20, 12, 0, tzinfo=UTC), tick=False):
        candles = seed_chart("VOD.L", bars=250)
        staff_browser = Client()
        staff_browser.force_login(UserFactory(is_staff=True, is_superuser=True))
        data = staff_browser.get("/admin/charts/VOD.L/data", {"timeframe": "1D", "limit": 250}).json()
    assert len(data["candles"]) == 250
    drawn = [_shown(data, c["time"]) for c in data["candles"]]
    assert [(d.date().isoformat(), d.hour) for d in drawn] == [(c["date"], 0) for c in candles]
    assert any(c["timestamp"].endswith("+01:00") for c in candles)  # summer bars are in the range
    assert {_shown(data, s["time"]) for s in data["signals"]} <= set(drawn)
