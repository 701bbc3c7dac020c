"""`load_demo_data` fills the watchlist with synthetic candles for demos; it must not replace real ones."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from market.models import Instrument, MarketData
from market.tests.factories import InstrumentFactory, MarketDataFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def watchlist():
    Instrument.objects.update(active=False)
    InstrumentFactory(symbol="TCS.NS", active=True)
    InstrumentFactory(symbol="INFY.NS", active=True)
    Instrument.objects.filter(symbol__in=["TCS.NS", "INFY.NS"]).update(active=True)
    now = datetime.now(UTC).replace(hour=18, minute=30, second=0, microsecond=0)
    for days in range(3, 13):  # ten days of real TCS bars, as Yahoo stored them
        MarketDataFactory(
            symbol="TCS.NS", timeframe="1D", timestamp=now - timedelta(days=days), source="yfinance"
        )


def demo(*args) -> str:
    out = StringIO()
    call_command("load_demo_data", "--days", "30", *args, stdout=out)
    return out.getvalue()


def test_a_symbol_with_real_candles_is_skipped_not_overwritten(watchlist):
    real = list(MarketData.objects.filter(symbol="TCS.NS").values_list("timestamp", "close_price", "source"))
    output = demo()
    assert "TCS.NS: skipped, it has 1D candles from yfinance" in output
    assert (
        list(MarketData.objects.filter(symbol="TCS.NS").values_list("timestamp", "close_price", "source"))
        == real
    )
    assert set(MarketData.objects.filter(symbol="INFY.NS").values_list("source", flat=True)) == {"synthetic"}


def test_replace_real_overwrites_them_when_asked(watchlist):
    real = MarketData.objects.filter(symbol="TCS.NS", source="yfinance").count()
    demo("--replace-real")
    # The trading days' bars are synthetic now (the weekend ones the demo has no bar for stay as they were).
    assert MarketData.objects.filter(symbol="TCS.NS", source="yfinance").count() < real
    assert MarketData.objects.filter(symbol="TCS.NS", source="synthetic").exists()
