"""The historical read on PostgreSQL (one row of arrays, loaded as NumPy columns) gives what the ORM's read of
the same rows gives, for every window a request can ask for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.db import DataError, connection

from market.columns import columns_in_time_order
from market.models import MarketData
from market.selectors import _binary_cursor, _history_columns
from market.services import candles_upsert
from market.tests.factories import make_candles
from market.timeframes import Timeframe

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's read (SQLite's is the ORM's)"),
]

START = datetime(2024, 1, 1, 3, 45, tzinfo=UTC)


def as_lists(bars) -> dict[str, list]:
    fields = ("time", "open", "high", "low", "close", "volume", "final")
    return {field: getattr(bars, field).tolist() for field in fields} | {"source": bars.source}


@pytest.fixture
def stored():
    """60 daily bars from three sources, some final, with awkward floats and volumes past 2**53."""
    for part, source in ((slice(0, 20), "yfinance"), (slice(20, 45), "csv"), (slice(45, 60), "synthetic")):
        candles = make_candles(60, start=START)[part]
        candles["close"] = candles["close"] * (1 + 1e-13)
        candles["high"] = candles[["high", "close"]].max(axis=1)
        candles["volume"] = candles["volume"] + 2**53 + 1
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=candles, source=source)
    return START


WINDOWS = [
    {"start": None, "end": None, "limit": 25},
    {"start": None, "end": None, "limit": 500},
    {"start": START + timedelta(days=10), "end": START + timedelta(days=30), "limit": 500},
    {"start": START + timedelta(days=10), "end": None, "limit": 7, "from_start": True},
    {"start": None, "end": START + timedelta(days=22, hours=1), "limit": 5},
    {"start": START + timedelta(days=100), "end": None, "limit": 5},  # nothing stored there
]


@pytest.mark.parametrize("window", WINDOWS)
def test_the_array_read_is_the_row_read(stored, monkeypatch, window):
    args = {"symbol": "TCS.NS", "timeframe": Timeframe.D1, **window}
    assert connection.vendor == "postgresql"
    in_arrays = _history_columns(**args)
    monkeypatch.setattr(connection, "vendor", "sqlite")  # the ORM's read of the same rows
    in_rows = _history_columns(**args)
    assert as_lists(in_arrays) == as_lists(in_rows)
    assert in_arrays.time.dtype == np.int64 and in_arrays.volume.dtype == np.int64
    assert in_arrays.final.dtype == bool and in_arrays.open.dtype == np.float64


def test_mixed_sources_and_flags_come_through(stored):
    bars = _history_columns(symbol="TCS.NS", timeframe=Timeframe.D1, start=None, end=None, limit=500)
    assert len(bars) == 60 and bars.sources == "csv,synthetic,yfinance"
    assert bars.source[0] == "yfinance" and bars.source[-1] == "synthetic"
    assert np.all(np.diff(bars.time) == 86_400)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT '{}'::int8[]", []),
        ("SELECT ARRAY[-1, 0, 9223372036854775807]::int8[]", [-1, 0, 2**63 - 1]),
        ("SELECT ARRAY[0.1, -2.5e300, 'NaN']::float8[]", [0.1, -2.5e300, float("nan")]),
        ("SELECT ARRAY[true, false]", [True, False]),
    ],
)
def test_arrays_load_as_numpy_columns(sql, expected):
    with _binary_cursor(array_columns=True) as cursor:
        cursor.execute(sql, {})
        (loaded,) = cursor.fetchone()
    assert isinstance(loaded, np.ndarray)
    np.testing.assert_array_equal(loaded, np.array(expected, dtype=loaded.dtype))


@pytest.mark.parametrize(
    "sql", ["SELECT ARRAY[1, NULL]::int8[]", "SELECT ARRAY[[1.0, 2.0], [3.0, 4.0]]::float8[]"]
)
def test_arrays_a_column_cannot_hold_are_refused(sql):
    with _binary_cursor(array_columns=True) as cursor, pytest.raises(DataError):
        cursor.execute(sql, {})
        cursor.fetchone()


def test_other_cursors_keep_psycopgs_lists():
    with _binary_cursor(array_columns=True) as cursor:  # loaders registered on the shared connection's cursor
        cursor.execute("SELECT ARRAY[1, 2]::int8[]", {})
        assert isinstance(cursor.fetchone()[0], np.ndarray)
    with _binary_cursor() as cursor:
        cursor.execute("SELECT ARRAY[1, 2]::int8[]", {})
        assert cursor.fetchone() == ([1, 2],)


@pytest.mark.parametrize("from_start", [False, True])
def test_bars_within_one_second_come_in_the_orms_order(monkeypatch, from_start):
    """Times are read to the second: two bars stored within one (a CSV with fractions) share a time, and stay
    in stored order, as the ORM's read gives them."""
    offsets = [
        timedelta(0),
        timedelta(minutes=1),
        timedelta(minutes=1, microseconds=500_000),
        timedelta(minutes=2),
    ]
    for price, offset in zip((10.0, 11.0, 12.0, 13.0), offsets, strict=True):
        MarketData.objects.create(
            symbol="TCS.NS", timeframe="1m", timestamp=START + offset, open_price=price, high_price=price,
            low_price=price, close_price=price, volume=int(price), source=f"s{price:g}", final=True,
        )  # fmt: skip
    args = {"symbol": "TCS.NS", "timeframe": Timeframe.M1, "start": START, "end": None, "limit": 10}
    in_arrays = _history_columns(**args, from_start=from_start)
    monkeypatch.setattr(connection, "vendor", "sqlite")
    assert as_lists(in_arrays) == as_lists(_history_columns(**args, from_start=from_start))
    assert in_arrays.open.tolist() == [10.0, 11.0, 12.0, 13.0]
    assert in_arrays.time[1] == in_arrays.time[2]


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]])
def test_columns_are_put_in_time_order_whatever_order_they_came_in(order):
    time = np.array([100, 200, 300, 400])[order]
    bars = columns_in_time_order(
        time=time, open=time * 1.0, high=time * 1.0, low=time * 1.0, close=time * 1.0, volume=time,
        final=time > 250, source=[f"s{t}" for t in time],
    )  # fmt: skip
    assert bars.time.tolist() == [100, 200, 300, 400] == bars.volume.tolist() == bars.open.tolist()
    assert bars.final.tolist() == [False, False, True, True]
    assert bars.source == ["s100", "s200", "s300", "s400"]


@pytest.mark.parametrize(
    ("stamp", "seconds"),
    [
        ("2026-01-05 03:45:00+00", 1_767_584_700),
        ("2026-01-05 03:45:00.999999+00", 1_767_584_700),  # truncated, as the API shows times
        ("1999-12-31 23:59:59.5+00", 946_684_799),  # before 2000 (negative microseconds): towards the past
        ("1969-12-31 23:59:59.000001+00", -1),
        ("2000-01-01 00:00:00+00", 946_684_800),
    ],
)
def test_timestamps_load_as_epoch_seconds(stamp, seconds):
    with _binary_cursor(array_columns=True) as cursor:
        cursor.execute("SELECT ARRAY[%(stamp)s::timestamptz]", {"stamp": stamp})
        (loaded,) = cursor.fetchone()
    assert loaded.dtype == np.int64 and loaded.tolist() == [seconds]


def test_an_infinite_timestamp_is_refused():
    with _binary_cursor(array_columns=True) as cursor, pytest.raises(DataError):
        cursor.execute("SELECT ARRAY['infinity'::timestamptz]", {})
        cursor.fetchone()


def test_a_fraction_of_a_second_before_1970_floors_in_both_reads(monkeypatch):
    when = datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC)
    MarketData.objects.create(
        symbol="TCS.NS", timeframe="1D", timestamp=when, open_price=1.0, high_price=1.0, low_price=1.0,
        close_price=1.0, volume=1, source="csv", final=True,
    )  # fmt: skip
    args = {"symbol": "TCS.NS", "timeframe": Timeframe.D1, "start": None, "end": None, "limit": 5}
    assert _history_columns(**args).time.tolist() == [-1]
    monkeypatch.setattr(connection, "vendor", "sqlite")
    assert _history_columns(**args).time.tolist() == [-1]
