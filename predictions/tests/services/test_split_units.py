"""A prediction is stored in the prices its base bar traded at, also when a split goes ex after that bar: on the
day itself, while that day's bar is still forming, or an announced split staff entered ahead of its ex-date."""

from datetime import UTC, date, datetime

import pytest
import time_machine

from market.models import CorporateAction, MarketData
from market.services import candles_sync, market_reads_invalidate
from market.sources import get_provider
from market.timeframes import Timeframe
from predictions.services import prediction_generate

pytestmark = pytest.mark.django_db

# Thursday 2026-06-04, 12:00 IST: the session is open, the day's bar is forming; the last closed bar is 3 June's.
NOON = datetime(2026, 6, 4, 6, 30, tzinfo=UTC)


@pytest.mark.parametrize("ex_date", [date(2026, 6, 4), date(2026, 6, 15)], ids=["ex_today", "announced"])
def test_a_split_going_ex_after_the_base_bar_leaves_the_prediction_in_that_bars_prices(ex_date):
    with time_machine.travel(NOON, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
        CorporateAction.objects.create(symbol="TCS.NS", ex_date=ex_date, kind="split", ratio=2.0)
        market_reads_invalidate(symbol="TCS.NS")
        prediction = prediction_generate(symbol="TCS.NS", timeframe=Timeframe.D1, model="naive")
    traded = MarketData.objects.get(symbol="TCS.NS", timeframe="1D", timestamp=prediction.base_timestamp)
    assert prediction.base_timestamp < NOON
    # Naive: the base bar's close as traded, not half of it (the units of a day that had not come yet).
    assert prediction.base_price == pytest.approx(traded.close_price)
    assert prediction.predicted_price == pytest.approx(traded.close_price)
    assert prediction.lower_bound < traded.close_price < prediction.upper_bound
