"""Coarser bars built from finer ones, aligned to the exchange's sessions. Pure (no ORM), NumPy only.

Weeks and months come from daily bars; 1H and 4H bars from 5m/15m bars, in buckets that start at the session
open (NSE: 09:15, 10:15, … 15:15, the last one cut short by the 15:30 close), never at the top of the clock
hour. A derived bar is final only when every session (intraday: every part's slot) of the period it stands for
has a stored final part: a week whose last trading day has no bar yet, or an hour whose last part has not
closed, is still forming, and one with a session missing inside it (never fetched, or the provider had none) is
built from less than it claims. Except where the series begins (`since`: the listing, the provider's known
history start, its lookback floor): in a period whose parts all lie from it on, its sessions before it cannot
exist for the series, so they are not missing (a stock listed on a Wednesday has a final first week). A period
with a part before `since` shows the series had sessions then: all of them count.

Bars come and go as BarColumns (market/columns.py), in time order: open times in UTC epoch seconds. Daily bars
open at exchange-local midnight; so do the derived weeks and months (midnight of their first trading day). Each
derived bar's source is the comma-joined sources of its parts.

Column at a time, without pandas: a read builds hundreds of weeks per request (a 500-week read took 37 ms with
pandas' groupby and a date per daily bar in Python; bench/README.md, "Derived bars without pandas").
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

import numpy as np

from market.columns import BarColumns, empty_columns
from market.presentation import local_seconds

_DAY = 86400


class SessionCalendar(Protocol):
    """What resampling needs of an exchange calendar (market.calendar.ExchangeCalendar has it)."""

    tz: ZoneInfo

    def trading_days_array(self, start: date, end: date) -> np.ndarray: ...

    def session_hours(self, day: date) -> tuple[datetime, datetime]: ...


def daily_to(
    bars: BarColumns, period: Literal["1W", "1M"], calendar: SessionCalendar, *, since: int | None = None
) -> BarColumns:
    """Weekly (ISO weeks) or monthly bars from daily ones, in the exchange's calendar. Sessions of days before
    `since` (UTC epoch seconds: where the series begins) are not required in a period with no bar before it."""
    if period not in ("1W", "1M"):
        raise ValueError(f"daily bars resample to 1W or 1M, not {period!r}")
    if not len(bars):
        return empty_columns()
    days = (local_seconds(bars.time, calendar.tz) // _DAY).astype("datetime64[D]")
    keys = _period_starts(period, days)
    firsts, lasts = _runs(keys)
    # The sessions of every period touched, from one read of the calendar: a period is complete once each of
    # its sessions has a bar (a gap inside it, or days before the first stored one, leave it incomplete however
    # late it is), and a period without a session never is.
    periods = keys[firsts]
    ends = _period_ends(period, periods)
    trading = calendar.trading_days_array(periods[0].item(), ends[-1].item())
    sessions = np.searchsorted(trading, ends, side="right") - np.searchsorted(trading, periods, side="left")
    required = sessions
    if since is not None:
        # The series' first period: its sessions before the series began could never have a bar.
        since_day = (local_seconds(np.asarray([since], dtype=np.int64), calendar.tz) // _DAY).astype(
            "datetime64[D]"
        )[0]
        cut = np.where(days[firsts] >= since_day, np.maximum(periods, since_day), periods)
        required = np.searchsorted(trading, ends, side="right") - np.searchsorted(trading, cut, side="left")
    at = np.minimum(np.searchsorted(trading, days), max(len(trading) - 1, 0))
    session_day = trading[at] == days if len(trading) else np.zeros(len(days), dtype=bool)
    new_day = np.concatenate(([True], days[1:] != days[:-1]))  # two bars of one day count once
    covered = np.add.reduceat((new_day & session_day).astype(np.int64), firsts)
    complete = (sessions > 0) & (covered == required)
    first_days = days[firsts].tolist()
    times = [int(datetime.combine(day, time(), calendar.tz).timestamp()) for day in first_days]
    return _built(bars, firsts, lasts, times=np.asarray(times, dtype=np.int64), complete=complete)


def period_days(period: str, day: date) -> tuple[date, date]:
    """First and last calendar day of the period that `day` falls in: its ISO week (1W), its month (1M), or the
    day itself (intraday bars, whose buckets are counted from the session open)."""
    if period == "1W":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=6)
    if period == "1M":
        first = day.replace(day=1)
        return first, (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return day, day


def intraday_to(
    bars: BarColumns, *, part: timedelta, bar: timedelta, calendar: SessionCalendar, since: int | None = None
) -> BarColumns:
    """`bar`-long bars (1H, 4H) from `part`-long ones (5m, 15m), in buckets counted from each session's open.
    Parts before the open or from the close on belong to no bar, nor do parts of a day without a session.
    Slots opening before `since` (UTC epoch seconds: where the series begins) are not required in a bucket with
    no part before it."""
    if bar <= part or bar % part:
        raise ValueError("the derived bar must be a whole multiple of the parts' length")
    if not len(bars):
        return empty_columns()
    days = (local_seconds(bars.time, calendar.tz) // _DAY).astype("datetime64[D]")
    unique_days, day_of = np.unique(days, return_inverse=True)
    trading = np.isin(unique_days, calendar.trading_days_array(unique_days[0].item(), unique_days[-1].item()))
    hours = [
        calendar.session_hours(day) if is_trading else None
        for day, is_trading in zip(unique_days.tolist(), trading.tolist(), strict=True)
    ]
    opens = np.array([int(h[0].timestamp()) if h else 0 for h in hours], dtype=np.int64)[day_of]
    closes = np.array([int(h[1].timestamp()) if h else 0 for h in hours], dtype=np.int64)[day_of]
    bar_s, part_s = bar // timedelta(seconds=1), part // timedelta(seconds=1)
    k = (bars.time - opens) // bar_s
    starts = opens + k * bar_s
    keep = np.flatnonzero((bars.time >= opens) & (bars.time < closes))
    if not keep.size:
        return empty_columns()
    kept = bars.take(keep)
    starts, ends = starts[keep], np.minimum(starts + bar_s, closes)[keep]
    firsts, lasts = _runs(starts)
    # Complete once every part's slot of the bucket has a bar: the last one closing at its end says nothing of
    # a slot missing before it.
    slot = (kept.time - starts) // part_s
    new_slot = np.concatenate(([True], (slot[1:] != slot[:-1]) | (starts[1:] != starts[:-1])))
    covered = np.add.reduceat(new_slot.astype(np.int64), firsts)
    slots = -(-(ends[firsts] - starts[firsts]) // part_s)
    if since is not None:
        # The series' first bucket: its slots opening before the series began could never have a part.
        cut = np.where(kept.time[firsts] >= since, since, starts[firsts])
        slots -= np.clip(-(-(cut - starts[firsts]) // part_s), 0, slots)
    complete = covered == slots
    return _built(kept, firsts, lasts, times=starts[firsts], complete=complete)


def _period_starts(period: str, days: np.ndarray) -> np.ndarray:
    """The first day of each datetime64[D] day's ISO week or month."""
    if period == "1W":
        return days - (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)
    return days.astype("datetime64[M]").astype("datetime64[D]")


def _period_ends(period: str, starts: np.ndarray) -> np.ndarray:
    if period == "1W":
        return starts + 6
    return (starts.astype("datetime64[M]") + 1).astype("datetime64[D]") - 1


def _runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, last) positions of each run of equal keys, in order (the bars are in time order, so are the keys)."""
    firsts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    lasts = np.concatenate((firsts[1:], [len(keys)])) - 1
    return firsts, lasts


def _built(
    bars: BarColumns, firsts: np.ndarray, lasts: np.ndarray, *, times: np.ndarray, complete: np.ndarray
) -> BarColumns:
    """One bar per run [firsts[i], lasts[i]] of parts: first open, highest high, lowest low, last close, summed
    volume; final when the period is `complete` and every part is final."""
    sources = bars.source
    if len(set(sources)) == 1:
        joined = [sources[0]] * len(firsts)
    else:
        joined = [
            ",".join(sorted(set(sources[first : last + 1])))
            for first, last in zip(firsts.tolist(), lasts.tolist(), strict=True)
        ]
    return BarColumns(
        time=times,
        open=bars.open[firsts],
        high=np.maximum.reduceat(bars.high, firsts),
        low=np.minimum.reduceat(bars.low, firsts),
        close=bars.close[lasts],
        volume=np.add.reduceat(bars.volume, firsts),
        final=np.asarray(complete, dtype=bool) & np.logical_and.reduceat(bars.final, firsts),
        source=joined,
    )
