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

from datetime import UTC, datetime, time, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

import pandas as pd

_OHLCV = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


class SessionCalendar(Protocol):
    """What resampling needs of an exchange calendar (market.calendar.ExchangeCalendar has it)."""

    tz: ZoneInfo

    def trading_days(self, start, end) -> list: ...

    def session_hours(self, day) -> tuple[datetime, datetime]: ...


def _finals(bars: pd.DataFrame) -> pd.Series:
    if "final" in bars.columns:
        return bars["final"].astype(bool)
    return pd.Series(True, index=bars.index)


def _empty_like(bars: pd.DataFrame) -> pd.DataFrame:
    frame = bars.iloc[0:0][list(_OHLCV)].copy()
    frame["final"] = pd.Series(dtype=bool)
    return frame


def daily_to(bars: pd.DataFrame, period: Literal["1W", "1M"], calendar: SessionCalendar) -> pd.DataFrame:
    """Weekly (ISO weeks) or monthly bars from daily ones, in the exchange's calendar."""
    if bars.empty:
        return _empty_like(bars)
    local_days = bars.index.tz_convert(calendar.tz).date
    if period == "1W":
        keys = [d - timedelta(days=d.weekday()) for d in local_days]  # Monday of the ISO week
    elif period == "1M":
        keys = [d.replace(day=1) for d in local_days]
    else:
        raise ValueError(f"daily bars resample to 1W or 1M, not {period!r}")
    frame = bars[list(_OHLCV)].copy()
    frame["final"] = _finals(bars).to_numpy()
    frame["day"] = local_days
    frame["key"] = keys
    rows = []
    for key, group in frame.groupby("key", sort=True):
        period_end = key + timedelta(days=6) if period == "1W" else (key + pd.offsets.MonthEnd(0)).date()
        days = calendar.trading_days(key, period_end)
        complete = bool(days) and group["day"].iloc[-1] >= days[-1]
        first_day = group["day"].iloc[0]
        rows.append(
            {
                "timestamp": datetime.combine(first_day, time(), calendar.tz).astimezone(UTC),
                "open": group["open"].iloc[0],
                "high": group["high"].max(),
                "low": group["low"].min(),
                "close": group["close"].iloc[-1],
                "volume": int(group["volume"].sum()),
                "final": complete and bool(group["final"].all()),
            }
        )
    return _frame(rows)


def intraday_to(
    bars: pd.DataFrame, *, part: timedelta, bar: timedelta, calendar: SessionCalendar
) -> pd.DataFrame:
    """`bar`-long bars (1H, 4H) from `part`-long ones (5m, 15m), in buckets counted from each session's open."""
    if bar <= part or bar % part:
        raise ValueError("the derived bar must be a whole multiple of the parts' length")
    if bars.empty:
        return _empty_like(bars)
    finals = _finals(bars)
    local = bars.index.tz_convert(calendar.tz)
    rows = []
    for day in sorted(set(local.date)):
        opened, closed = calendar.session_hours(day)
        in_day = local.date == day
        day_bars = bars[in_day]
        day_final = finals[in_day]
        offsets = (day_bars.index - opened.astimezone(UTC)) // bar
        for k, group in day_bars.groupby(offsets.to_numpy(), sort=True):
            if k < 0:
                continue  # before the session open: not part of any session bar
            start = opened.astimezone(UTC) + k * bar
            end = min(start + bar, closed.astimezone(UTC))
            if start >= end:
                continue  # after the close
            complete = group.index[-1] + part >= end
            rows.append(
                {
                    "timestamp": start,
                    "open": group["open"].iloc[0],
                    "high": group["high"].max(),
                    "low": group["low"].min(),
                    "close": group["close"].iloc[-1],
                    "volume": int(group["volume"].sum()),
                    "final": bool(complete and day_final[group.index].all()),
                }
            )
    return _frame(rows)


def _frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows).set_index("timestamp")
    frame.index = pd.DatetimeIndex(frame.index).tz_convert(UTC).as_unit("us")
    frame.index.name = "timestamp"
    return frame
