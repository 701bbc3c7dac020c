"""Candles as columns (BarColumns): what a historical read hands from storage to adjustment, resampling and
rendering. Pure (no ORM).

A read of 2,500 bars was a list of 2,500 tuples that each step walked in Python (putting every bar in the
exchange's clock, rounding four prices to the tick, building a dict): about 80% of a cache miss. As NumPy
columns each step is a handful of array operations (bench/README.md, "Cache miss, vectorised").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np


@dataclass(frozen=True, slots=True)
class BarColumns:
    """BarColumns in time order. `time` is each bar's open in UTC epoch seconds (int64: what charting libraries take
    and what API times are rendered from, to the second), prices float64 as stored, `source` per bar."""

    time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    final: np.ndarray
    source: list[str]

    def __len__(self) -> int:
        return len(self.time)

    @property
    def sources(self) -> str | None:
        """The distinct sources of these bars, sorted and comma-joined (None when there are none)."""
        return ",".join(sorted(set(self.source))) or None

    def reversed(self) -> BarColumns:
        return BarColumns(
            time=self.time[::-1],
            open=self.open[::-1],
            high=self.high[::-1],
            low=self.low[::-1],
            close=self.close[::-1],
            volume=self.volume[::-1],
            final=self.final[::-1],
            source=self.source[::-1],
        )

    def take(self, order: np.ndarray) -> BarColumns:
        """The bars at the positions `order` lists, in its order."""
        return BarColumns(
            time=self.time[order],
            open=self.open[order],
            high=self.high[order],
            low=self.low[order],
            close=self.close[order],
            volume=self.volume[order],
            final=self.final[order],
            source=[self.source[i] for i in order.tolist()],
        )

    def scaled(self, prices: np.ndarray, volumes: np.ndarray) -> BarColumns:
        """Prices multiplied by `prices` and volumes by `volumes` (rounded half to even, as Python's round), bar
        by bar: a corporate-action adjustment. A factor of 1 leaves the value exactly as it was."""
        volume = self.volume.copy()
        changed = volumes != 1
        volume[changed] = np.rint(self.volume[changed] * volumes[changed])
        return replace(
            self,
            open=self.open * prices,
            high=self.high * prices,
            low=self.low * prices,
            close=self.close * prices,
            volume=volume,
        )


def empty_columns() -> BarColumns:
    return columns_of(time=[], open=[], high=[], low=[], close=[], volume=[], final=[], source=[])


def columns_of(
    *,
    time: Iterable,
    open: Iterable,
    high: Iterable,
    low: Iterable,
    close: Iterable,
    volume: Iterable,
    final: Iterable,
    source: Iterable[str],
) -> BarColumns:
    return BarColumns(
        time=np.asarray(time, dtype="int64"),
        open=np.asarray(open, dtype="float64"),
        high=np.asarray(high, dtype="float64"),
        low=np.asarray(low, dtype="float64"),
        close=np.asarray(close, dtype="float64"),
        volume=np.asarray(volume, dtype="int64"),
        final=np.asarray(final, dtype="bool"),
        source=list(source),
    )


def columns_in_time_order(*, descending: bool = False, **columns) -> BarColumns:
    """BarColumns of columns_of's columns, sorted by time: the bars as given, or reversed when `descending`, when
    that is time order (bars within one second, which share a time here, keep the order they were read in, as
    the ORM's read gives them); else sorted, stably, from that order."""
    bars = columns_of(**columns)
    if descending:
        bars = bars.reversed()
    if (np.diff(bars.time) >= 0).all():
        return bars
    return bars.take(np.argsort(bars.time, kind="stable"))


def columns_from_rows(rows: Sequence[tuple]) -> BarColumns:
    """BarColumns of (time, open, high, low, close, volume, final, source) rows, `time` in epoch seconds or as an aware
    datetime (truncated to the second)."""
    if not rows:
        return empty_columns()
    time, open_, high, low, close, volume, final, source = zip(*rows, strict=True)
    if isinstance(time[0], datetime):
        time = [_epoch_seconds(ts) for ts in time]
    return columns_of(
        time=time, open=open_, high=high, low=low, close=close, volume=volume, final=final, source=source
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


def _epoch_seconds(ts: datetime) -> int:
    if ts.tzinfo is None:
        raise ValueError("naive datetime: candle times are stored timezone-aware (UTC)")
    return (ts - _EPOCH) // _SECOND  # floored, as PostgreSQL's read floors (exactly: no float in between)
