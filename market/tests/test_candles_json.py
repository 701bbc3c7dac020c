"""The column-at-a-time candle rendering (market.presentation.candles_json) gives the bytes of the per-bar loop it
replaced: the same times in the exchange's clock (DST changes included), the same floats at the tick, the same
adjusted volumes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.adjust import Action, day_factors
from market.columns import columns_from_rows, empty_columns
from market.presentation import candles_json, local_times, price_array_rounder, price_rounder

ZONES = [ZoneInfo("Asia/Kolkata"), ZoneInfo("America/New_York"), ZoneInfo("Europe/London"), UTC]
TICKS = [Decimal("0.05"), None, Decimal("0.01"), Decimal("0.25"), Decimal("1"), Decimal("0.03"), 0.1]


def per_bar_json(rows: list[tuple], *, tz, tick, by_day: bool, table: bool = False) -> bytes:
    """The rendering as it was, one bar at a time (the reference)."""
    to_tick = price_rounder(tick)
    out = []
    for ts, o, h, lo, c, v, final, _ in rows:
        local = ts.astimezone(tz).replace(microsecond=0)
        row = {"timestamp": local, "open": to_tick(o), "high": to_tick(h), "low": to_tick(lo)}
        row.update(close=to_tick(c), volume=v, final=final)
        if by_day:
            row["date"] = local.date()
        out.append(row)
    if table:
        fields = ["open", "high", "low", "close", "volume", "final", *(["date"] if by_day else [])]
        columns = {"time": [int(ts.timestamp()) for ts, *_ in rows]}
        columns.update({field: [row[field] for row in out] for field in fields})
        return orjson.dumps(columns)
    return orjson.dumps(out)


prices = st.floats(min_value=0.01, max_value=200_000, allow_nan=False, allow_infinity=False)
bar = st.tuples(
    st.datetimes(min_value=datetime(1995, 1, 1), max_value=datetime(2040, 12, 31), timezones=st.just(UTC)),
    prices,
    prices,
    prices,
    prices,
    st.integers(min_value=0, max_value=10**12),
    st.booleans(),
    st.sampled_from(["yfinance", "csv", "synthetic"]),
)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(bar, max_size=40),
    tz=st.sampled_from(ZONES),
    tick=st.sampled_from(TICKS),
    by_day=st.booleans(),
    table=st.booleans(),
)
def test_same_bytes_as_the_per_bar_rendering(rows, tz, tick, by_day, table):
    rows.sort(key=lambda row: row[0])
    bars = columns_from_rows(rows)
    assert candles_json(bars, tz=tz, tick=tick, by_day=by_day, table=table) == per_bar_json(
        rows, tz=tz, tick=tick, by_day=by_day, table=table
    )
    assert bars.sources == (",".join(sorted({row[7] for row in rows})) or None)


def test_times_across_new_yorks_dst_change_carry_each_bars_own_offset():
    # 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.
    utc = [datetime(2026, 3, 8, 6, 59, tzinfo=UTC), datetime(2026, 3, 8, 7, 0, tzinfo=UTC)]
    utc += [datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 1, 6, 30, tzinfo=UTC)]
    seconds = np.array([int(t.timestamp()) for t in utc])
    assert local_times(seconds, ZoneInfo("America/New_York")).tolist() == [
        "2026-03-08T01:59:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:30:00-05:00",
    ]
    assert local_times(seconds[:1], ZoneInfo("Asia/Kolkata")).tolist() == ["2026-03-08T12:29:00+05:30"]


@pytest.mark.parametrize(
    ("zone", "when"),
    [
        ("Asia/Kolkata", datetime(1900, 6, 1, 4, 0, tzinfo=UTC)),  # +05:21:10 until 1906
        ("Africa/Monrovia", datetime(1960, 6, 1, 12, 0, tzinfo=UTC)),  # -00:44:30 until 1972
    ],
)
def test_offsets_with_seconds_read_in_whole_minutes_as_before(zone, when):
    rows = [(when, 10.0, 11.0, 9.0, 10.5, 100, True, "csv")]
    tz = ZoneInfo(zone)
    rendered = candles_json(columns_from_rows(rows), tz=tz, tick=None, by_day=False)
    assert rendered == per_bar_json(rows, tz=tz, tick=None, by_day=False)
    assert orjson.loads(rendered)[0]["timestamp"][-6:] in {"+05:21", "-00:45"}


def test_sub_second_times_read_truncated_to_the_second():
    when = datetime(2026, 1, 5, 3, 45, 0, 999_999, tzinfo=UTC)
    bars = columns_from_rows([(when, 1.0, 1.0, 1.0, 1.0, 1, True, "csv")])
    assert bars.time.tolist() == [int(datetime(2026, 1, 5, 3, 45, tzinfo=UTC).timestamp())]


@pytest.mark.parametrize("tick", TICKS)
def test_array_rounding_is_the_per_value_rounding(tick):
    values = np.random.default_rng(7).uniform(0.01, 50_000, 5_000)
    values[:4] = [1.025, 2.675, 0.125, 1234.575]  # halves and their float neighbours
    one = price_rounder(tick)
    assert price_array_rounder(tick)(values) == [one(v) for v in values.tolist()]


def test_an_empty_read_renders_an_empty_array():
    bars = empty_columns()
    assert candles_json(bars, tz=UTC, tick=None, by_day=True) == b"[]"
    assert orjson.loads(candles_json(bars, tz=UTC, tick=None, by_day=True, table=True)) == {
        "time": [], "open": [], "high": [], "low": [], "close": [], "volume": [], "final": [], "date": []
    }  # fmt: skip
    assert bars.sources is None


def test_scaling_matches_the_per_bar_adjustment():
    """A 1:5 split and a dividend: prices times the factor, volumes rounded half to even, untouched bars
    exactly as stored."""
    start = datetime(2026, 1, 1, 3, 45, tzinfo=UTC)
    rows = [
        (start + timedelta(days=i), 100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i, 1001 + 3 * i, True, "csv")
        for i in range(10)
    ]
    actions = [
        Action(ex_date=date(2026, 1, 4), kind="split", ratio=5.0),
        Action(ex_date=date(2026, 1, 8), kind="dividend", amount=3.0, previous_close=106.5),
    ]
    days = [row[0].date() for row in rows]
    factors, volume_factors = day_factors(days, [row[4] for row in rows], actions, mode="all")
    expected = [
        (o * f, h * f, lo * f, c * f, round(v * vf)) if f != 1 or vf != 1 else (o, h, lo, c, v)
        for (_, o, h, lo, c, v, *_), f, vf in zip(
            rows, factors.tolist(), volume_factors.tolist(), strict=True
        )
    ]
    scaled = columns_from_rows(rows).scaled(factors, volume_factors)
    got = zip(*(getattr(scaled, f).tolist() for f in ("open", "high", "low", "close", "volume")), strict=True)
    assert list(got) == expected
    assert scaled.volume.dtype == np.int64


def test_a_volume_without_a_factor_is_kept_exactly():
    rows = [(datetime(2026, 1, 1, tzinfo=UTC), 1.0, 1.0, 1.0, 1.0, 2**53 + 1, True, "csv")]
    scaled = columns_from_rows(rows).scaled(np.array([0.5]), np.array([1.0]))
    assert scaled.volume.tolist() == [2**53 + 1]
