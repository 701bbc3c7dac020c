"""Change alerts mean today's change: weekly and monthly bars never feed them, and the previous close is that of
the session before the last bar's trading day."""

from datetime import UTC, datetime

import pytest

from alerts.models import AlertEvent
from alerts.selectors import latest_price
from alerts.tasks import evaluate_candles
from alerts.tests.factories import AlertFactory
from market.tests.factories import InstrumentFactory, MarketDataFactory

pytestmark = pytest.mark.django_db


def _ist_midnight(month: int, day: int) -> datetime:
    """Open of the daily bar of the next day (00:00 IST)."""
    return datetime(2026, month, day, 18, 30, tzinfo=UTC)


@pytest.fixture
def week_to_wednesday(db):
    """Daily closes Fri 29 May 100, Mon 101, Tue 102, Wed 3 June 103, and the forming week that opened Monday."""
    InstrumentFactory(symbol="TCS.NS")
    for opened, close in [
        (_ist_midnight(5, 28), 100.0),
        (_ist_midnight(5, 31), 101.0),
        (_ist_midnight(6, 1), 102.0),
        (_ist_midnight(6, 2), 103.0),
    ]:
        MarketDataFactory(
            symbol="TCS.NS",
            timeframe="1D",
            timestamp=opened,
            open_price=close,
            high_price=close + 1,
            low_price=close - 1,
            close_price=close,
        )
    MarketDataFactory(
        symbol="TCS.NS",
        timeframe="1W",
        timestamp=_ist_midnight(5, 31),
        open_price=100.5,
        high_price=104.0,
        low_price=100.0,
        close_price=103.0,
    )


def test_weekly_candles_do_not_feed_change_alerts_the_week_to_date_change(week_to_wednesday):
    AlertFactory(kind="change_pct_above", threshold=2.0)
    price_alert = AlertFactory(kind="price_above", threshold=102.5)
    assert evaluate_candles("TCS.NS", "1W") == []
    assert not AlertEvent.objects.exists()
    assert len(evaluate_candles("TCS.NS", "1D")) == 1  # the daily change is 0.98%; the price is above 102.5
    assert AlertEvent.objects.get().alert_id == price_alert.pk


def test_the_previous_close_of_a_weekly_bar_is_the_session_before_its_last_day(week_to_wednesday):
    latest = latest_price(symbol="TCS.NS", timeframe="1W")
    assert latest.price == 103.0
    assert latest.change_pct == pytest.approx((103.0 / 102.0 - 1) * 100)
