"""Read-time adjustment: a split day no longer looks like a 50% crash; dividends only for `all`; staff factors."""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from market.adjust import Action, adjust_candles, split_ratio_between

IST = ZoneInfo("Asia/Kolkata")


def _daily(closes, start_day=1):
    index = pd.DatetimeIndex(
        [
            datetime.combine(date(2026, 6, start_day + i), time(), IST).astimezone(UTC)
            for i in range(len(closes))
        ],
        name="timestamp",
    )
    return pd.DataFrame(
        {
            "open": closes,
            "high": [c + 1 for c in closes],
            "low": [c - 1 for c in closes],
            "close": closes,
            "volume": [1000] * len(closes),
        },
        index=index,
    )


SPLIT = Action(ex_date=date(2026, 6, 3), kind="split", ratio=2.0)


def test_a_split_is_continuous_after_adjustment_and_untouched_without():
    raw = _daily([200.0, 202.0, 101.0, 102.0])  # the 1:2 split takes effect on 3 June
    assert adjust_candles(raw, [SPLIT], mode="none", tz=IST) is raw
    adjusted = adjust_candles(raw, [SPLIT], mode="splits", tz=IST)
    assert list(adjusted["close"]) == [100.0, 101.0, 101.0, 102.0]
    assert list(adjusted["volume"]) == [2000, 2000, 1000, 1000]
    assert list(raw["close"]) == [200.0, 202.0, 101.0, 102.0]  # the stored frame is not changed


def test_dividends_only_in_the_total_return_series():
    raw = _daily([100.0, 100.0, 98.0])
    dividend = Action(ex_date=date(2026, 6, 3), kind="dividend", amount=2.0)
    assert list(adjust_candles(raw, [dividend], mode="splits", tz=IST)["close"]) == [100.0, 100.0, 98.0]
    assert list(adjust_candles(raw, [dividend], mode="all", tz=IST)["close"]) == pytest.approx(
        [98.0, 98.0, 98.0]
    )


def test_staff_factor_for_a_demerger_in_the_total_return_series_only():
    raw = _daily([2800.0, 2850.0, 2580.0])
    demerger = Action(ex_date=date(2026, 6, 3), kind="adjustment", factor=0.9)
    assert (
        adjust_candles(raw, [demerger], mode="splits", tz=IST) is raw
    )  # value left the company: not a split
    adjusted = adjust_candles(raw, [demerger], mode="all", tz=IST)
    assert list(adjusted["close"]) == pytest.approx([2520.0, 2565.0, 2580.0])
    assert list(adjusted["volume"]) == [1000, 1000, 1000]


def test_a_dividend_uses_the_known_previous_close_over_the_window():
    raw = _daily([100.0, 100.0])  # the window ends before the ex-date: its last close is not the previous one
    dividend = Action(ex_date=date(2026, 6, 10), kind="dividend", amount=2.0, previous_close=50.0)
    assert list(adjust_candles(raw, [dividend], mode="all", tz=IST)["close"]) == pytest.approx([96.0, 96.0])


def test_split_ratio_between_two_days():
    bonus = Action(ex_date=date(2026, 6, 3), kind="bonus", ratio=2.0)
    dividend = Action(ex_date=date(2026, 6, 3), kind="dividend", amount=1.0)
    assert (
        split_ratio_between([SPLIT, bonus, dividend], after=date(2026, 6, 2), through=date(2026, 6, 3)) == 4.0
    )
    assert split_ratio_between([SPLIT], after=date(2026, 6, 3), through=date(2026, 6, 4)) == 1.0


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="adjust must be one of"):
        adjust_candles(_daily([1.0]), [], mode="dividends", tz=IST)
