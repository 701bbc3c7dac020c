from datetime import UTC, date, datetime

import pytest
from django.test import Client

from accounts.tests.factories import UserFactory
from charts.tests.factories import seed_chart
from market.models import CorporateAction, Instrument
from market.services import market_reads_invalidate
from market.tests.factories import InstrumentFactory
from predictions.models import Prediction
from signals.models import TradingSignal

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
    assert data["time_zone"] == "Asia/Kolkata"
    # The exchange's wall clock, as the chart library draws it: a daily bar at its trading day's midnight, IST.
    assert data["candles"][-1]["time"] == _wall(candles[-1]["timestamp"])
    assert {c["time"] % 86400 for c in data["candles"]} == {0}
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
    assert backtest["error"] is None and backtest["stale"] is False
    # The page's summary carries the API's warnings: no costs are charged here, and the trades are few.
    assert any(w.startswith("No costs") for w in backtest["warnings"])
    assert backtest["equity"][0]["value"] == pytest.approx(1.0, abs=0.05)  # marked at its first close
    assert len(backtest["buy_and_hold"]) == len(backtest["equity"])
    # Bought at the first bar's open, as the summary's buy-and-hold return is: the line ends at that figure.
    # (From the first close, the line and the figure printed above it disagreed by the first bar's move.)
    first_bar = next(c for c in data["candles"] if c["time"] == backtest["equity"][0]["time"])
    assert backtest["buy_and_hold"][0]["value"] == pytest.approx(first_bar["close"] / first_bar["open"])
    last_value = backtest["buy_and_hold"][-1]["value"]
    assert last_value == pytest.approx(1 + backtest["summary"]["buy_and_hold_return"], abs=1e-3)  # 4 digits


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


def _wall(iso: str) -> int:
    """The wall-clock time of an ISO 8601 time with its offset, as UNIX seconds read as UTC."""
    return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp())


def test_chart_times_are_the_exchange_wall_clock_in_summer_and_in_winter(staff_browser):
    # A daily NYSE bar stands at its trading day's midnight in New York: 05:00 UTC in winter, 04:00 UTC in summer.
    # One offset for every bar (the one of today) drew half the year's bars at 23:00 of the day before.
    InstrumentFactory(symbol="^GSPC", exchange="NYSE", currency="USD", kind="index")
    data = staff_browser.get("/admin/charts/%5EGSPC/data", {"timeframe": "1D", "limit": 300}).json()
    assert len(data["candles"]) == 300
    assert {c["time"] % 86400 for c in data["candles"]} == {0}
    assert data["time_zone"] == "America/New_York"


def test_chart_signals_levels_and_predictions_follow_the_candles_across_a_split(staff_browser):
    # Signals and levels are stored as traded on their candle, predictions in the prices of their base bar.
    # After a 1:2 split they were drawn at twice the split-adjusted candles they belong to.
    candles = seed_chart()
    ex_date = date.fromisoformat(
        candles[-7]["date"]
    )  # after the signals and the realized forecast's base bar
    CorporateAction.objects.create(symbol="TCS.NS", ex_date=ex_date, kind="split", ratio=2.0)
    market_reads_invalidate(symbol="TCS.NS")
    buy = TradingSignal.objects.get(signal_type="BUY")
    hold = TradingSignal.objects.get(signal_type="HOLD")
    realized = Prediction.objects.get(realized_price__isnull=False)
    pending = Prediction.objects.get(realized_price__isnull=True)

    data = staff_browser.get(DATA, {"timeframe": "1D", "limit": 400}).json()
    assert data["adjust"] == "splits"
    close_at = {c["time"]: c["close"] for c in data["candles"]}
    marker = next(s for s in data["signals"] if s["type"] == "BUY")
    assert marker["price"] == pytest.approx(buy.entry_price / 2, abs=0.05)  # at the tick
    assert marker["price"] == pytest.approx(close_at[marker["time"]], abs=0.05)  # on its candle
    assert data["levels"]["support"] == pytest.approx(hold.support_level / 2)
    assert data["levels"]["resistance"] == pytest.approx(hold.resistance_level / 2)
    drawn_realized, drawn_pending = data["predictions"]
    for key, stored in (
        ("predicted", "predicted_price"),
        ("lower", "lower_bound"),
        ("realized", "realized_price"),
    ):
        assert drawn_realized[key] == pytest.approx(getattr(realized, stored) / 2)
    assert drawn_pending["predicted"] == pytest.approx(pending.predicted_price)  # made after the split

    # As traded: signals and levels where they traded; a forecast from before the split, drawn on a bar after
    # it, in that bar's prices.
    data = staff_browser.get(DATA, {"timeframe": "1D", "limit": 400, "adjust": "none"}).json()
    marker = next(s for s in data["signals"] if s["type"] == "BUY")
    assert marker["price"] == pytest.approx(buy.entry_price, abs=0.05)
    assert data["levels"]["support"] == pytest.approx(hold.support_level)
    assert data["predictions"][0]["predicted"] == pytest.approx(realized.predicted_price / 2)
    # Buy-and-hold stays on the backtest's split-adjusted series: no false halving at the split.
    values = [p["value"] for p in data["backtest"]["buy_and_hold"]]
    assert min(values) > 0.6


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
    drawn = [datetime.fromtimestamp(c["time"], UTC) for c in data["candles"]]
    assert [(d.date().isoformat(), d.hour) for d in drawn] == [(c["date"], 0) for c in candles]
    assert any(c["timestamp"].endswith("+01:00") for c in candles)  # summer bars are in the range
    assert {datetime.fromtimestamp(s["time"], UTC) for s in data["signals"]} <= set(drawn)


def test_a_backtest_replayed_on_stale_candles_is_drawn_as_stale(staff_browser, monkeypatch):
    """The API's backtest says `stale: true` when the provider failed and the stored candles were replayed; the
    chart dropped the flag and showed the figures as current."""
    import time_machine

    from market.tests.factories import down_provider, provider_configured
    from market.tests.stale import LATER, STORED

    with time_machine.travel(STORED, tick=False):
        seed_chart()
    provider_configured(monkeypatch, down_provider())
    with time_machine.travel(LATER, tick=False):
        data = staff_browser.get(DATA, {"timeframe": "1D", "limit": 400}).json()
    assert data["backtest"]["error"] is None and data["backtest"]["equity"]
    assert data["backtest"]["stale"] is True


def test_a_bar_still_forming_is_marked_so_on_the_chart(staff_browser):
    """During the session today's daily bar is stored partial (`final` false in the API, as a live provider
    serves it); the chart dropped the flag and drew it as a finished bar, its last price read as the close."""
    import pandas as pd
    import time_machine

    from market.services import candles_upsert
    from market.timeframes import Timeframe

    with time_machine.travel(datetime(2026, 6, 3, 6, 30, tzinfo=UTC), tick=False):  # 12:00 IST, session open
        seed_chart(bars=300)
        today = pd.DataFrame(
            {"open": [100.0], "high": [101.0], "low": [99.0], "close": [100.5], "volume": [1000]},
            index=pd.DatetimeIndex([datetime(2026, 6, 2, 18, 30, tzinfo=UTC)], name="timestamp"),
        )
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=today, source="synthetic")
        market_reads_invalidate(symbol="TCS.NS")
        data = staff_browser.get(DATA, {"timeframe": "1D", "limit": 300}).json()
    assert [c["final"] for c in data["candles"]] == [True] * 299 + [False]
