"""Price alerts across splits, bonus issues and reverse splits: a threshold is a price in the share count of the
day it was set, so a split halving the price is no crossing."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from alerts.models import AlertEvent
from alerts.tests.factories import AlertFactory
from market.services import candles_upsert
from market.tests.factories import CorporateActionFactory, make_candles
from market.timeframes import Timeframe
from tradingdash.events import QuoteRefreshed, announce

pytestmark = pytest.mark.django_db

JUNE_1 = datetime(2026, 5, 31, 18, 30, tzinfo=UTC)  # 00:00 IST, 1 June 2026 (a Monday)
EX_DATE = date(2026, 6, 2)


def ist(day: int, hour: int, minute: int = 0) -> datetime:
    return JUNE_1 + timedelta(days=day - 1, hours=hour, minutes=minute)


def daily(*closes: float):
    """Daily bars from 1 June, each open/high/low at its close."""
    candles = make_candles(len(closes), start=JUNE_1)
    for i, close in enumerate(closes):
        candles.iloc[i, :4] = [close, close, close, close]
    return candles


def store(candles, *, at: datetime, capture) -> None:
    with time_machine.travel(at, tick=False), capture(execute=True):
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=candles, source="test")


@pytest.mark.parametrize(
    ("kind", "ratio", "before", "after"),
    [
        ("split", 2.0, 2600.0, 1310.0),  # 1:2 split: 1,310 is 2,620 in the old shares
        ("bonus", 2.0, 2600.0, 1310.0),  # 1:1 bonus: the same to the price
        ("split", 0.1, 260.0, 2620.0),  # 10:1 consolidation (reverse split): 2,620 is 262 in the old shares
    ],
)
def test_a_share_count_change_is_no_crossing_of_a_threshold_set_before_it(
    django_capture_on_commit_callbacks, kind, ratio, before, after
):
    CorporateActionFactory(ex_date=EX_DATE, kind=kind, ratio=ratio)
    with time_machine.travel(ist(1, 11), tick=False):  # set on 1 June, trading at `before`
        below = AlertFactory(kind="price_below", threshold=before * 0.96, cooldown_minutes=0)
        above = AlertFactory(kind="price_above", threshold=before * 1.04, cooldown_minutes=0)
    # The ex-date's bar, forming at 15:00 IST, and the quote of the same moment.
    store(daily(before, after), at=ist(2, 15), capture=django_capture_on_commit_callbacks)
    quote = {"price": after, "change_percent": 0.77, "timestamp": ist(2, 0).isoformat(), "source": "test"}
    with time_machine.travel(ist(2, 15, 1), tick=False), django_capture_on_commit_callbacks(execute=True):
        announce(QuoteRefreshed(symbol="TCS.NS", quote=quote))
    assert not AlertEvent.objects.exists()

    # The next day trades 5% up on the old shares' price: above the threshold as set, in the new shares' prices.
    store(
        daily(before, after, before * 1.05 / ratio), at=ist(3, 16), capture=django_capture_on_commit_callbacks
    )
    event = AlertEvent.objects.get()
    assert event.alert_id == above.pk
    assert event.threshold == pytest.approx(before * 1.04 / ratio)
    assert event.details["threshold_as_set"] == pytest.approx(above.threshold)
    assert f"{before * 1.04 / ratio:g}" in event.message
    below.refresh_from_db()
    assert below.armed  # never beyond its threshold in the prices it was set in


def test_a_threshold_set_on_or_after_the_ex_date_is_in_the_new_shares(django_capture_on_commit_callbacks):
    CorporateActionFactory(ex_date=EX_DATE, ratio=2.0)
    store(daily(2600.0, 1310.0), at=ist(2, 10), capture=django_capture_on_commit_callbacks)
    with time_machine.travel(ist(2, 11), tick=False):  # the ex-date's session trades at 1,310
        alert = AlertFactory(kind="price_below", threshold=1250.0, cooldown_minutes=0)
    store(daily(2600.0, 1310.0, 1240.0), at=ist(3, 16), capture=django_capture_on_commit_callbacks)
    event = AlertEvent.objects.get(alert=alert)
    assert (event.value, event.threshold) == (1240.0, 1250.0)


def test_a_threshold_set_before_the_ex_dates_session_opens_is_in_the_old_shares(
    django_capture_on_commit_callbacks,
):
    # At 08:00 IST on the ex-date the last price anyone saw is the day before's, in the old shares.
    CorporateActionFactory(ex_date=EX_DATE, ratio=2.0)
    store(daily(2600.0), at=ist(1, 17), capture=django_capture_on_commit_callbacks)
    with time_machine.travel(ist(2, 8), tick=False):
        AlertFactory(kind="price_below", threshold=2500.0, cooldown_minutes=0)
    store(daily(2600.0, 1310.0), at=ist(2, 15), capture=django_capture_on_commit_callbacks)
    assert not AlertEvent.objects.exists()


def test_an_edited_threshold_is_in_the_shares_of_the_day_it_was_edited(django_capture_on_commit_callbacks):
    from alerts.services import alert_update

    CorporateActionFactory(ex_date=EX_DATE, ratio=2.0)
    with time_machine.travel(ist(1, 11), tick=False):
        alert = AlertFactory(kind="price_below", threshold=2500.0, cooldown_minutes=0)
    with time_machine.travel(ist(2, 12), tick=False):
        alert_update(alert=alert, threshold=1320.0)  # set again after the split, in the new shares
    store(daily(2600.0, 1310.0), at=ist(2, 15), capture=django_capture_on_commit_callbacks)
    assert AlertEvent.objects.get(alert=alert).threshold == 1320.0
