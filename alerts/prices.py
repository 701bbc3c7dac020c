"""What a stored bar says the price was, for price and change alerts: pure (no ORM), the reads are
alerts.selectors'."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from market.adjust import Action, split_ratio_between_times

DAY = timedelta(days=1)


@dataclass(frozen=True, kw_only=True)
class PriceObservation:
    """A price (and its change against the previous session's close) and when it held: a quote, or a bar."""

    price: float | None
    change_pct: float | None
    observed_at: datetime  # when the close was the price: the bar's end, or when a forming bar was fetched
    source: str | None = None  # the provider that wrote the bar (synthetic, csv, yfinance…)
    final: bool | None = None  # of a bar: False while it forms, its close the price when fetched


class DailyCloses:
    """Stored daily bars, oldest first: (open, close) pairs."""

    def __init__(self, bars: Sequence[tuple[datetime, float]]):
        self.bars = list(bars)
        self._opens = [opened for opened, _ in self.bars]

    def last_opening_before(self, moment: datetime) -> tuple[datetime, float] | None:
        """The newest bar that opened at or before `moment`."""
        index = bisect_right(self._opens, moment)
        return self.bars[index - 1] if index else None

    def last_opening_in(self, start: datetime, end: datetime) -> datetime | None:
        """The open of the newest bar that opened in [start, end)."""
        index = bisect_left(self._opens, end)
        return self._opens[index - 1] if index and self._opens[index - 1] >= start else None


@dataclass(frozen=True, kw_only=True)
class StoredBar:
    timestamp: datetime  # its open
    close: float
    final: bool
    stored_at: datetime
    source: str


def bar_price(
    bar: StoredBar,
    *,
    length: timedelta,
    daily: DailyCloses,
    actions: list[Action],
    tz: tzinfo,
    now: datetime,
) -> PriceObservation:
    """The bar's close and its change against the previous session's daily close (the newest daily bar that
    opened at least a day before the bar's trading day: that day's own forming daily bar is not "previous"),
    divided by the ratio of any split or bonus going ex in between (`actions`, dated in the exchange's zone
    `tz`), so a split is no crash that fires alerts. The trading day of a weekly or monthly bar is that of its
    newest daily bar, not its open. A final bar's close was the price at its end (or now, before it); a forming
    bar's when it was stored, however late its evaluation runs (a late task must not pass an older price off as
    newer than a quote fetched since)."""
    trading_day = bar.timestamp
    if length > DAY:
        trading_day = daily.last_opening_in(bar.timestamp, bar.timestamp + length) or bar.timestamp
    change_pct = None
    previous = daily.last_opening_before(trading_day - DAY)
    if previous is not None and previous[1]:
        previous_at, close = previous
        close /= split_ratio_between_times(actions, earlier=previous_at, later=bar.timestamp, tz=tz)
        change_pct = (bar.close / close - 1) * 100
    observed_at = min(bar.timestamp + length, now if bar.final else bar.stored_at)
    return PriceObservation(
        price=bar.close, change_pct=change_pct, observed_at=observed_at, source=bar.source, final=bar.final
    )
