"""Coarser bars built from finer ones, aligned to the exchange's sessions. Pure (no ORM).

Weeks and months come from daily bars; 1H and 4H bars from 5m/15m bars, in buckets that start at the session
open (NSE: 09:15, 10:15, … 15:15, the last one cut short by the 15:30 close), never at the top of the clock
hour. A derived bar is final only when every part is final and the period it stands for is over: a week whose
last trading day has no bar yet, or an hour whose last part has not closed, is still forming.

Frames follow the candle convention (market/providers/base.py): UTC index of bar OPEN times, columns open,
high, low, close, volume, and optionally `final` (missing = every part final). Daily bars open at exchange-local
midnight; so do the derived weeks and months (midnight of their first trading day).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Literal, Protocol
from zoneinfo import ZoneInfo

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

_OHLCV = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


class SessionCalendar(Protocol):
    """What resampling needs of an exchange calendar (market.calendar.ExchangeCalendar has it)."""

    tz: ZoneInfo

    def trading_days(self, start, end) -> list: ...

    def session_hours(self, day) -> tuple[datetime, datetime]: ...


def _finals(bars: pd.DataFrame) -> pd.Series:
    import pandas as pd

    if "final" in bars.columns:
        return bars["final"].astype(bool)
    return pd.Series(True, index=bars.index)


def _empty_like(bars: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    frame = bars.iloc[0:0][list(_OHLCV)].copy()
    frame["final"] = pd.Series(dtype=bool)
    return frame


def daily_to(bars: pd.DataFrame, period: Literal["1W", "1M"], calendar: SessionCalendar) -> pd.DataFrame:
    """Weekly (ISO weeks) or monthly bars from daily ones, in the exchange's calendar. One groupby, not a loop
    per period: a read builds hundreds of weeks per request."""
    if bars.empty:
        return _empty_like(bars)
    if period not in ("1W", "1M"):
        raise ValueError(f"daily bars resample to 1W or 1M, not {period!r}")

    def period_of(day: date) -> tuple[date, date]:
        return period_days(period, day)

    local_days = bars.index.tz_convert(calendar.tz).date
    frame = bars[list(_OHLCV)].copy()
    frame["final"] = _finals(bars).to_numpy()
    frame["day"] = local_days
    frame["key"] = [period_of(d)[0] for d in local_days]
    grouped = frame.groupby("key", sort=True).agg(
        **{column: (column, how) for column, how in _OHLCV.items()},
        parts_final=("final", "all"),
        first_day=("day", "first"),
        last_day=("day", "last"),
    )
    # The last trading day of every period touched, from one pass over the calendar.
    last_trading: dict = {}
    for day in calendar.trading_days(grouped.index[0], period_of(grouped.index[-1])[1]):
        last_trading[period_of(day)[0]] = day
    complete = [
        key in last_trading and last_day >= last_trading[key]
        for key, last_day in zip(grouped.index, grouped["last_day"], strict=True)
    ]
    index = [datetime.combine(day, time(), calendar.tz).astimezone(UTC) for day in grouped["first_day"]]
    out = grouped[list(_OHLCV)].copy()
    out["volume"] = out["volume"].astype("int64")
    out["final"] = np.asarray(complete, dtype=bool) & grouped["parts_final"].to_numpy(dtype=bool)
    return _indexed(out, index)


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
    bars: pd.DataFrame, *, part: timedelta, bar: timedelta, calendar: SessionCalendar
) -> pd.DataFrame:
    """`bar`-long bars (1H, 4H) from `part`-long ones (5m, 15m), in buckets counted from each session's open.
    Parts before the open or from the close on belong to no bar."""
    import pandas as pd

    if bar <= part or bar % part:
        raise ValueError("the derived bar must be a whole multiple of the parts' length")
    if bars.empty:
        return _empty_like(bars)
    days = pd.Series(bars.index.tz_convert(calendar.tz).date, index=bars.index)
    hours = {day: calendar.session_hours(day) for day in sorted(set(days))}
    opens = days.map({day: pd.Timestamp(o).value for day, (o, _) in hours.items()}).to_numpy(np.int64)
    closes = days.map({day: pd.Timestamp(c).value for day, (_, c) in hours.items()}).to_numpy(np.int64)
    stamps = bars.index.as_unit("ns").asi8
    bar_ns, part_ns = pd.Timedelta(bar).value, pd.Timedelta(part).value
    k = (stamps - opens) // bar_ns
    starts = opens + k * bar_ns
    keep = (k >= 0) & (starts < closes)
    frame = bars.loc[keep, list(_OHLCV)].copy()
    frame["final"] = _finals(bars).to_numpy()[keep]
    frame["start"] = starts[keep]
    frame["end"] = np.minimum(starts + bar_ns, closes)[keep]
    frame["stamp"] = stamps[keep]
    if frame.empty:
        return _empty_like(bars)
    grouped = frame.groupby("start", sort=True).agg(
        **{column: (column, how) for column, how in _OHLCV.items()},
        parts_final=("final", "all"),
        last=("stamp", "max"),
        end=("end", "first"),
    )
    out = grouped[list(_OHLCV)].copy()
    out["volume"] = out["volume"].astype("int64")
    complete = (grouped["last"] + part_ns >= grouped["end"]).to_numpy(dtype=bool)
    out["final"] = complete & grouped["parts_final"].to_numpy(dtype=bool)
    return _indexed(out, pd.to_datetime(grouped.index.to_numpy(), utc=True))


def _indexed(frame: pd.DataFrame, index) -> pd.DataFrame:
    import pandas as pd

    frame.index = pd.DatetimeIndex(index).tz_convert(UTC).as_unit("us")
    frame.index.name = "timestamp"
    return frame
