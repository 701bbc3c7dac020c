from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from market.presentation import (
    _offset_text,
    default_tick,
    local_seconds,
    local_time,
    local_times,
    pct,
    price,
    price_rounder,
    ratio,
    trading_day,
    utc_offsets,
)
from tradingdash.tests.fresh_process import assert_script_passes

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


# Zones people trade in, and a few whose histories are odd: Casablanca suspends its +01:00 for Ramadan (two changes
# a month apart, dates from the lunar calendar), Lord Howe moves by 30 minutes, Kathmandu sits at +05:45 (+05:30
# until 1986), St John's at -03:30/-02:30, and Kolkata had +05:21:10 until 1906 (+05:53:28 before 1854).
ZONES = [
    "Asia/Kolkata",
    "America/New_York",
    "Europe/London",
    "UTC",
    "Africa/Casablanca",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "America/St_Johns",
]
HOUR = 3600


def _epoch(year: int, month: int = 1, day: int = 1, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp())


def _offsets_one_by_one(seconds: np.ndarray, tz) -> np.ndarray:
    return np.array(
        [datetime.fromtimestamp(s, tz).utcoffset() // timedelta(seconds=1) for s in seconds.tolist()],
        dtype=np.int64,
    )


def _local_times_with_pandas(seconds: np.ndarray, tz) -> list[str]:
    """local_times as it was written with pandas' tz_convert (the reference the API bytes were pinned against)."""
    wall = pd.to_datetime(seconds, unit="s", utc=True).tz_convert(tz).tz_localize(None).as_unit("s").asi8
    stamps = np.datetime_as_string(wall.astype("datetime64[s]"))
    return [
        stamp + _offset_text(offset)
        for stamp, offset in zip(stamps.tolist(), (wall - seconds).tolist(), strict=True)
    ]


def _local_times_one_by_one(seconds: np.ndarray, tz) -> list[str]:
    """Each time's wall clock from its own datetime, the offset floored to whole minutes (as API times carry it;
    orjson would round the seconds of an offset like New York's -04:56:02 before 1883 instead)."""
    out = []
    for s in seconds.tolist():
        local = datetime.fromtimestamp(s, tz)
        minutes = local.utcoffset() // timedelta(minutes=1)
        sign = "-" if minutes < 0 else "+"
        out.append(
            f"{local.replace(tzinfo=None).isoformat()}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        )
    return out


def _assert_as_one_by_one(seconds: np.ndarray, tz) -> None:
    expected = _offsets_one_by_one(seconds, tz)
    offsets = utc_offsets(seconds, tz)
    assert offsets.dtype == np.int64 and offsets.shape == seconds.shape
    mismatch = np.flatnonzero(offsets != expected)
    assert not mismatch.size, [(int(seconds[i]), int(offsets[i]), int(expected[i])) for i in mismatch[:5]]
    assert (local_seconds(seconds, tz) == seconds + expected).all()
    stamps = local_times(seconds, tz).tolist()
    assert stamps == _local_times_with_pandas(seconds, tz)
    assert stamps == _local_times_one_by_one(seconds, tz)


def _changes_to_the_second(seconds: np.ndarray, tz) -> np.ndarray:
    """The instants at which the zone's offset changes within an hourly grid, each found second by second one
    datetime at a time (utc_offsets is checked on every second of those hours on the way)."""
    hourly = _offsets_one_by_one(seconds, tz)
    changes = []
    for hour in seconds[:-1][hourly[1:] != hourly[:-1]].tolist():
        window = np.arange(hour, hour + HOUR + 1, dtype=np.int64)
        expected = _offsets_one_by_one(window, tz)
        assert (utc_offsets(window, tz) == expected).all()
        changes.extend(window[1:][expected[1:] != expected[:-1]].tolist())
    return np.array(changes, dtype=np.int64)


def _at_and_around(changes: np.ndarray) -> np.ndarray:
    return (changes[:, None] + np.array([-HOUR, -60, -2, -1, 0, 1, 60])).ravel()


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("year", [1853, 1905, 1942, 1969, 1986, 2007, 2026, 2041])
def test_utc_offsets_hour_by_hour_through_a_year_are_what_each_datetime_says(zone, year):
    tz = ZoneInfo(zone)
    seconds = np.arange(_epoch(year) - 2 * HOUR, _epoch(year + 1) + 2 * HOUR, HOUR, dtype=np.int64)
    _assert_as_one_by_one(seconds, tz)
    _assert_as_one_by_one(_at_and_around(_changes_to_the_second(seconds, tz)), tz)


def test_utc_offsets_hour_by_hour_through_casablancas_ramadan_years():
    tz = ZoneInfo("Africa/Casablanca")
    seconds = np.arange(_epoch(2017), _epoch(2028), HOUR, dtype=np.int64)
    changes = _changes_to_the_second(seconds, tz)
    assert len(changes) >= 20  # Ramadan suspensions and their ends, and the 2018 move to +01:00
    _assert_as_one_by_one(seconds, tz)
    _assert_as_one_by_one(_at_and_around(changes), tz)


@pytest.mark.parametrize(
    ("zone", "change", "before", "after"),
    [
        ("America/New_York", _epoch(2026, 3, 8, 7), -5 * HOUR, -4 * HOUR),
        ("America/New_York", _epoch(2026, 11, 1, 6), -4 * HOUR, -5 * HOUR),
        ("Europe/London", _epoch(2026, 3, 29, 1), 0, HOUR),
        ("Australia/Lord_Howe", _epoch(2026, 10, 3, 15, 30), 10 * HOUR + 1800, 11 * HOUR),
        ("Asia/Kolkata", _epoch(1905, 12, 31, 18, 38, 50), 5 * HOUR + 21 * 60 + 10, 5 * HOUR + 1800),
        ("Asia/Kathmandu", _epoch(1985, 12, 31, 18, 30), 5 * HOUR + 1800, 5 * HOUR + 45 * 60),
    ],
)
def test_an_offset_changes_at_its_second_and_not_one_before(zone, change, before, after):
    tz = ZoneInfo(zone)
    seconds = np.array([change - 1, change, change + 1], dtype=np.int64)
    assert utc_offsets(seconds, tz).tolist() == [before, after, after]
    assert _offsets_one_by_one(seconds, tz).tolist() == [before, after, after]
    _assert_as_one_by_one(seconds, tz)


def test_a_change_at_the_first_second_of_a_utc_year():
    # Lisbon left its mean time (-00:36:45) for UTC at 1912-01-01T00:00Z: the change is where a year's table starts.
    tz = ZoneInfo("Europe/Lisbon")
    seconds = np.arange(_epoch(1912) - 3, _epoch(1912) + 3, dtype=np.int64)
    assert utc_offsets(seconds, tz).tolist() == [-2205] * 3 + [0] * 3
    _assert_as_one_by_one(seconds, tz)
    _assert_as_one_by_one(seconds[2:4], tz)


def test_unsorted_input_keeps_its_order():
    tz = ZoneInfo("America/New_York")
    hourly = np.arange(_epoch(2024), _epoch(2027), HOUR, dtype=np.int64)
    shuffled = np.random.default_rng(7).permutation(
        np.concatenate([hourly, [_epoch(1950, 6, 1)], [_epoch(2026, 3, 8, 7)]])
    )
    _assert_as_one_by_one(shuffled, tz)
    assert local_times(shuffled[::-1], tz).tolist() == local_times(shuffled, tz).tolist()[::-1]


@pytest.mark.parametrize("tz", [ZoneInfo("Asia/Kolkata"), UTC, timezone(timedelta(hours=-3, minutes=-30))])
def test_empty_and_single_inputs(tz):
    empty = np.array([], dtype=np.int64)
    assert utc_offsets(empty, tz).dtype == np.int64 and utc_offsets(empty, tz).shape == (0,)
    assert local_seconds(empty, tz).shape == (0,)
    assert local_times(empty, tz).tolist() == []
    _assert_as_one_by_one(np.array([_epoch(2026, 11, 27, 3, 45)], dtype=np.int64), tz)


@pytest.mark.parametrize(
    "tz",
    [
        UTC,
        ZoneInfo("UTC"),
        timezone(timedelta(hours=5, minutes=30)),
        timezone(timedelta(hours=-9, seconds=-30)),
    ],
)
def test_fixed_offsets_and_utc(tz):
    seconds = np.arange(_epoch(1850), _epoch(2060), 7 * 86400 + 3 * HOUR + 17, dtype=np.int64)
    expected = _offsets_one_by_one(seconds, tz)
    assert (utc_offsets(seconds, tz) == expected).all()
    assert local_times(seconds, tz).tolist() == _local_times_one_by_one(seconds, tz)


def test_daily_bars_over_ten_years_read_as_with_pandas():
    seconds = _epoch(2016, 1, 4, 3, 45) + 86400 * np.arange(3653, dtype=np.int64)  # 09:15 IST every day
    for zone in ["Asia/Kolkata", "America/New_York"]:
        _assert_as_one_by_one(seconds, ZoneInfo(zone))


def test_importing_the_presentation_module_does_not_import_pandas():
    # A web worker renders quotes and candles through this module; pandas would cost it ~28 MiB.
    code = "import sys, market.presentation; assert 'pandas' not in sys.modules; print('ok')"
    assert_script_passes(code, timeout=60)
