"""The quote's change and previous close across an ex-date: a split, a bonus issue or a consolidation between the
previous close and the last price is no change of price, on the ex-date of the symbol's own exchange."""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import time_machine

from market.selectors import quote_get
from market.services import candles_upsert
from market.tests.factories import CorporateActionFactory, InstrumentFactory, down_provider, make_candles
from market.timeframes import Timeframe

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 12, 12, 0, tzinfo=UTC)


def stored_days(symbol: str, tz, closes: dict[date, float]) -> None:
    """Daily bars at the exchange's midnight, as providers stamp them."""
    candles = make_candles(len(closes))
    candles.index = pd.DatetimeIndex(
        [datetime.combine(day, time(), tz) for day in closes], name="timestamp"
    ).tz_convert(UTC)
    for i, close in enumerate(closes.values()):
        candles.iloc[i, :4] = [close, close, close, close]
    candles_upsert(symbol=symbol, timeframe=Timeframe.D1, candles=candles, source="test", fetched_at=NOW)


@pytest.mark.parametrize(
    ("symbol", "exchange", "zone", "kind", "ratio", "before", "after"),
    [
        ("TCS.NS", "NSE", "Asia/Kolkata", "bonus", 2.0, 200.0, 101.0),
        ("TCS.NS", "NSE", "Asia/Kolkata", "split", 0.1, 20.0, 202.0),  # 10:1 consolidation
        # London's midnight in June is 23:00 UTC the day before: the ex-date is London's day, not UTC's.
        ("VOD.L", "LSE", "Europe/London", "split", 2.0, 200.0, 101.0),
        ("AAPL.NY", "NYSE", "America/New_York", "split", 4.0, 400.0, 101.0),
    ],
)
def test_the_stale_quote_divides_the_previous_close_by_the_share_count_change(
    settings, symbol, exchange, zone, kind, ratio, before, after
):
    settings.DEFAULT_SYMBOL_SUFFIX = ""
    InstrumentFactory(symbol=symbol, exchange=exchange)
    tz = ZoneInfo(zone)
    CorporateActionFactory(symbol=symbol, ex_date=date(2026, 6, 10), kind=kind, ratio=ratio)
    with time_machine.travel(NOW, tick=False):
        stored_days(symbol, tz, {date(2026, 6, 9): before, date(2026, 6, 10): after})
        quote = quote_get(symbol=symbol, provider=down_provider())
    assert quote["stale"] is True and quote["price"] == after
    assert quote["previous_close"] == pytest.approx(before / ratio)
    assert quote["change_percent"] == pytest.approx(1.0)
