from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from market.presentation import local_time, pct, price, ratio, trading_day

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
