from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from market.presentation import default_tick, local_time, pct, price, price_rounder, ratio, trading_day

IST = ZoneInfo("Asia/Kolkata")
NY = ZoneInfo("America/New_York")


def test_friday_daily_bar_reads_as_friday_in_exchange_time():
    bar_open = datetime(2026, 11, 26, 18, 30, tzinfo=UTC)  # midnight IST, Friday 27 November
    assert local_time(bar_open, IST) == "2026-11-27T00:00:00+05:30"
    assert trading_day(bar_open, IST) == "2026-11-27"


def test_intraday_bar_in_exchange_clock_and_dst_offsets():
    assert (
        local_time(datetime(2026, 11, 27, 3, 45, 0, 123456, tzinfo=UTC), IST) == "2026-11-27T09:15:00+05:30"
    )
    assert local_time(datetime(2026, 7, 1, 13, 30, tzinfo=UTC), NY) == "2026-07-01T09:30:00-04:00"
    assert local_time(datetime(2026, 12, 1, 14, 30, tzinfo=UTC), NY) == "2026-12-01T09:30:00-05:00"
    assert local_time(None, IST) is None


def test_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="naive"):
        local_time(datetime(2026, 1, 1), IST)


def test_numbers_a_person_can_read():
    assert price(1431.6999999999998) == 1431.7
    assert price(1431.6999999999998, tick=0.05) == 1431.7
    assert price(101.02, tick=0.05) == 101.0
    assert price(101.03, tick=0.05) == 101.05
    assert pct(3.3500000000000227) == 3.35
    assert ratio(0.069312345) == 0.06931
    assert ratio(1.0843999) == 1.084
    assert ratio(0.0) == 0.0
    assert price(float("nan")) is None and pct(None) is None and ratio(float("inf")) is None


def _zone_of(symbol):
    return NY if symbol == "^GSPC" else IST


def test_present_puts_each_symbols_times_in_its_own_clock_and_rounds_by_meaning():
    from market.presentation import present

    payload = {
        "quotes": [
            {"symbol": "TCS.NS", "timestamp": "2026-11-26T18:30:00+00:00", "price": 3.3500000000000227,
             "change_percent": 1.23456, "volume": 10},
            {"symbol": "^GSPC", "timestamp": datetime(2026, 11, 27, 14, 30, tzinfo=UTC), "price": 6000.123456},
        ],
        "errors": {},
    }  # fmt: skip
    shown = present(payload, zone_of=_zone_of)
    tcs, gspc = shown["quotes"]
    assert tcs["timestamp"] == "2026-11-27T00:00:00+05:30" and tcs["price"] == 3.35
    assert tcs["change_percent"] == 1.23 and tcs["volume"] == 10
    assert gspc["timestamp"] == "2026-11-27T09:30:00-05:00" and gspc["price"] == 6000.12


def test_present_adds_the_trading_day_to_daily_rows_and_rounds_ratios():
    from market.presentation import present

    signal = {
        "symbol": "TCS.NS",
        "timeframe": "1D",
        "timestamp": "2026-11-26T18:30:00+00:00",
        "strength": 0.123456789,
        "support_level": 1431.6999999999998,
        "factors": [{"name": "rsi", "weight": 0.15000000000000002, "score": -0.33333333}],
    }
    shown = present(signal, zone_of=_zone_of)
    assert shown["date"] == "2026-11-27"
    assert shown["strength"] == 0.1235 and shown["support_level"] == 1431.7
    assert shown["factors"][0] == {"name": "rsi", "weight": 0.15, "score": -0.3333}
    # Without a symbol nothing says which clock: times stay as they are.
    assert present({"created_at": "2026-11-26T18:30:00+00:00"}, zone_of=_zone_of) == {
        "created_at": "2026-11-26T18:30:00+00:00"
    }


NSE_TICK = Decimal("0.05")


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (1431.6999, 1431.70),
        (1431.6999999999998, 1431.70),
        (1431.72, 1431.70),
        (1431.73, 1431.75),
        (0.07, 0.05),
    ],
)
def test_an_nse_equity_price_is_rounded_to_the_005_tick(raw, shown):
    assert price(raw, tick=NSE_TICK) == shown
    assert price_rounder(NSE_TICK)(raw) == shown


def test_without_a_tick_a_price_keeps_two_decimals():
    assert price(1431.72) == 1431.72 and price(1431.726) == 1431.73


@pytest.mark.parametrize(
    ("tick", "raw", "shown"),
    [
        (Decimal("0.25"), 101.37, 101.25),
        (Decimal("1"), 101.6, 102.0),
        (Decimal("0.0025"), 83.1234, 83.1225),  # finer than a paisa: shown with the tick's four decimals
        (Decimal("0.03"), 1.07, 1.08),  # a step that is not 1/n
    ],
)
def test_a_staff_tick_applies(tick, raw, shown):
    assert price(raw, tick=tick) == shown


def test_default_ticks_only_for_nse_and_bse_equities():
    assert default_tick("NSE", "equity") == NSE_TICK and default_tick("BSE", "equity") == NSE_TICK
    assert default_tick("NSE", "index") is None
    assert default_tick("NYSE", "equity") is None


def test_present_rounds_traded_prices_to_the_symbols_tick_and_model_outputs_to_two_decimals():
    from market.presentation import present

    ticks = {"TCS.NS": NSE_TICK, "^NSEI": None}
    payload = {
        "signals": [
            {"symbol": "TCS.NS", "entry_price": 1431.73, "support_level": 1431.6999999999998,
             "resistance_level": 1480.12, "stop_loss": 1401.23456, "price_target": 1490.11111},
            {"symbol": "^NSEI", "support_level": 24001.73},
        ],
        "prediction": {"symbol": "TCS.NS", "base_price": 1431.73, "predicted_price": 1440.12345,
                       "lower_bound": 1430.0111, "upper_bound": 1450.0199, "realized_price": 1441.12},
        "candles": {"symbol": "TCS.NS", "rows": [{"open": 1431.72, "high": 1431.73, "low": 1431.6999, "close": 1431.76}]},
    }  # fmt: skip
    shown = present(payload, zone_of=_zone_of, tick_of=ticks.get)
    tcs, nifty = shown["signals"]
    assert (tcs["entry_price"], tcs["support_level"], tcs["resistance_level"]) == (1431.75, 1431.7, 1480.1)
    assert (tcs["stop_loss"], tcs["price_target"]) == (1401.23, 1490.11)  # computed from ATR: two decimals
    assert nifty["support_level"] == 24001.73
    prediction = shown["prediction"]
    assert (prediction["base_price"], prediction["realized_price"]) == (1431.75, 1441.1)
    assert (prediction["predicted_price"], prediction["lower_bound"], prediction["upper_bound"]) == (
        1440.12,
        1430.01,
        1450.02,
    )
    assert shown["candles"]["rows"] == [{"open": 1431.7, "high": 1431.75, "low": 1431.7, "close": 1431.75}]
    # Without tick_of every price keeps two decimals.
    assert present(payload, zone_of=_zone_of)["signals"][0]["entry_price"] == 1431.73
