import dataclasses
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from market.providers.base import (
    CANDLE_COLUMNS,
    Quote,
    empty_candles,
    normalize_candles,
    slice_candles,
    validate_candles,
)

IST = ZoneInfo("Asia/Kolkata")


def candles(rows: list[tuple]) -> pd.DataFrame:
    index = pd.DatetimeIndex([datetime(2026, 11, day, 3, 45, tzinfo=UTC) for day in range(2, 2 + len(rows))])
    frame = pd.DataFrame(rows, columns=list(CANDLE_COLUMNS), index=index)
    frame["volume"] = frame["volume"].astype("int64")
    return frame


def test_empty_candles_follow_the_convention():
    frame = empty_candles()
    assert frame.empty
    assert list(frame.columns) == list(CANDLE_COLUMNS)
    assert frame.dtypes.astype(str).tolist() == ["float64"] * 4 + ["int64"]
    assert frame.index.name == "timestamp"
    assert str(frame.index.dtype) == "datetime64[us, UTC]"


def test_validate_candles_splits_valid_from_rejected_rows():
    frame = candles(
        [
            (100.0, 105.0, 99.0, 104.0, 10),  # valid
            (100.0, 105.0, 101.0, 104.0, 10),  # low above open
            (100.0, 103.0, 99.0, 104.0, 10),  # high below close
            (100.0, 105.0, 99.0, 104.0, -1),  # negative volume
            (0.0, 105.0, 0.0, 104.0, 10),  # zero price
            (np.nan, 105.0, 99.0, 104.0, 10),  # missing price
            (100.0, np.inf, 99.0, 104.0, 10),  # infinite price
            (100.0, 100.0, 100.0, 100.0, 0),  # flat bar, no trades: valid
        ]
    )
    valid, rejected = validate_candles(frame)
    assert list(valid.index) == [frame.index[0], frame.index[7]]
    assert list(rejected.index) == list(frame.index[1:7])


def test_normalize_candles_brings_yahoo_shaped_frames_to_the_convention():
    index = pd.DatetimeIndex([datetime(2026, 11, day, tzinfo=IST) for day in (3, 2, 3, 4, 5)])
    raw = pd.DataFrame(
        {
            "Open": [10.0, 9.0, 11.0, np.nan, 12.0],
            "High": [12.0, 10.0, 13.0, 13.0, 13.0],
            "Low": [9.0, 8.0, 10.0, 10.0, 11.0],
            "Close": [11.0, 9.5, 12.0, 12.0, 12.5],
            "Volume": [100.0, 90.0, 110.0, 120.0, np.nan],
            "Dividends": 0.0,
        },
        index=index,
    )
    frame = normalize_candles(raw)
    assert list(frame.columns) == list(CANDLE_COLUMNS)
    assert frame.dtypes.astype(str).tolist() == ["float64"] * 4 + ["int64"]
    assert list(frame.index) == [
        datetime(2026, 11, 1, 18, 30, tzinfo=UTC),
        datetime(2026, 11, 2, 18, 30, tzinfo=UTC),
        datetime(2026, 11, 4, 18, 30, tzinfo=UTC),
    ]
    assert frame["open"].tolist() == [9.0, 11.0, 12.0]  # the later duplicate wins; the NaN row is gone
    assert frame["volume"].tolist() == [90, 110, 0]


def test_normalize_candles_refuses_naive_index_and_missing_columns():
    naive = pd.DataFrame({c: [1.0] for c in CANDLE_COLUMNS}, index=pd.DatetimeIndex([datetime(2026, 11, 2)]))
    with pytest.raises(ValueError, match="timezone-aware"):
        normalize_candles(naive)
    aware = naive.tz_localize(UTC).drop(columns="volume")
    with pytest.raises(ValueError, match="volume"):
        normalize_candles(aware)


def test_slice_candles_is_half_open():
    frame = candles([(1.0, 1.0, 1.0, 1.0, 1)] * 4)
    sliced = slice_candles(frame, frame.index[1].to_pydatetime(), frame.index[3].to_pydatetime())
    assert list(sliced.index) == list(frame.index[1:3])
    with pytest.raises(ValueError, match="aware"):
        slice_candles(frame, datetime(2026, 11, 2), None)


def test_quote_is_immutable():
    quote = Quote(
        symbol="TCS.NS",
        price=1.0,
        change=None,
        change_percent=None,
        open=1.0,
        high=1.0,
        low=1.0,
        previous_close=None,
        volume=0,
        timestamp=datetime(2026, 11, 2, tzinfo=UTC),
        currency="INR",
        source="csv",
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        quote.price = 2.0
