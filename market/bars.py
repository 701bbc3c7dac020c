"""Bar arithmetic on the exchange calendar: when a bar closes and which bar lies n bars ahead. Pure."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

import numpy as np

from market.calendar import ExchangeCalendar
from market.timeframes import Timeframe

if TYPE_CHECKING:
    import pandas as pd

# Bars never run past this many days of closures (long holiday runs are at most a few days).
_MAX_SCAN_DAYS = 60


def bar_close(calendar: ExchangeCalendar, timeframe: Timeframe, opened_at: datetime) -> datetime:
    """When the bar that opened at `opened_at` closes, in UTC: an intraday bar after its length, cut short by
    the session close; a daily bar with its session; a weekly or monthly bar with the last session of its week or
    month (early closes included)."""
    day = opened_at.astimezone(calendar.tz).date()
    if timeframe is Timeframe.D1:
        return calendar.session_close(day).astimezone(UTC)
    if timeframe is Timeframe.W1:
        # The bar's ISO week: a week built from days opens on its first trading day, a Tuesday after a
        # Monday holiday, and still ends with that week's last session.
        monday = day - timedelta(days=day.weekday())
        week = calendar.trading_days(monday, monday + timedelta(days=6))
        return calendar.session_close(week[-1] if week else monday + timedelta(days=4)).astimezone(UTC)
    if timeframe is Timeframe.MN1:
        month_end = (day.replace(day=1) + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        month = calendar.trading_days(day, month_end)
        return calendar.session_close(month[-1] if month else month_end).astimezone(UTC)
    return min(opened_at + timeframe.spec.bar, calendar.session_close(day)).astimezone(UTC)


def in_sessions(calendar: ExchangeCalendar, timeframe: Timeframe, index: pd.DatetimeIndex) -> np.ndarray:
    """Which bars of an aware index open in a session of the exchange, as its calendar knows them: an intraday bar
    inside its day's hours, a daily bar on a trading day (a special session's day included; a weekday of a year
    whose holidays are not loaded is one, as the calendar takes it). Weekly and monthly bars are stamped by their
    period, whose first day may be closed: always True."""
    if timeframe.is_intraday:
        return calendar.session_mask(index)
    if timeframe is not Timeframe.D1 or not len(index):
        return np.ones(len(index), dtype=bool)
    days = index.tz_convert(calendar.tz).tz_localize(None).to_numpy().astype("datetime64[D]")
    return np.asarray(calendar.trading_mask(days))


def bars_ahead(calendar: ExchangeCalendar, timeframe: Timeframe, opened_at: datetime, n: int) -> datetime:
    """Open time (UTC) of the bar `n` bars after the one that opened at `opened_at`, skipping closures."""
    if n < 1:
        raise ValueError("n must be at least 1")
    local = opened_at.astimezone(calendar.tz)
    if timeframe is Timeframe.W1:
        # Step in exchange-local time: n weeks of UTC drift by an hour across a DST change.
        day = local.date() + timedelta(weeks=n)
        return datetime.combine(day, local.time(), calendar.tz).astimezone(UTC)
    if timeframe is Timeframe.MN1:
        # A month bar opens at local midnight of its first trading day (market/resample.py).
        months = local.year * 12 + local.month - 1 + n
        first = date(months // 12, months % 12 + 1, 1)
        days = calendar.trading_days(first, first + timedelta(days=_MAX_SCAN_DAYS))
        if not days:
            raise ValueError("no trading session found ahead")
        return datetime.combine(days[0], time(), calendar.tz).astimezone(UTC)
    if timeframe is Timeframe.D1:
        day = local.date()
        for _ in range(n):
            day = calendar.next_trading_day(day)
        return datetime.combine(day, time(), calendar.tz).astimezone(UTC)
    remaining = n
    day = local.date()
    for _ in range(_MAX_SCAN_DAYS * max(1, n)):
        later = [b for b in calendar.session_bars(day, timeframe.spec.bar) if b > opened_at]
        if len(later) >= remaining:
            return later[remaining - 1]
        remaining -= len(later)
        day += timedelta(days=1)
    raise ValueError("no trading session found ahead")


def closed_only(
    candles: pd.DataFrame, calendar: ExchangeCalendar, timeframe: Timeframe, now: datetime
) -> pd.DataFrame:
    """Drop a last bar that is still forming at `now` (signals and predictions use closed candles only)."""
    if candles.empty:
        return candles
    last_open = candles.index[-1].to_pydatetime()
    if bar_close(calendar, timeframe, last_open) > now:
        return candles.iloc[:-1]
    return candles
