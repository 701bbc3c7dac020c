"""Data-quality checks of one symbol's stored candles against its exchange calendar. Pure (no ORM).

Each check returns `Finding`s (kind, UTC time range, details) that the caller stores and shows to staff:
- missing: sessions (or intraday session bars) the calendar says exist between the first and last bar, or
  up to the last session that should be in by `now`, with no bar;
- outside_session: bars on closed days, or intraday bars outside the session hours;
- duplicate / non_monotonic: repeated or out-of-order bar times;
- jump: a close-to-close or gap move larger than `k` × ATR(14) on a day without a corporate action;
- zero_volume: runs of at least `min_zero_run` bars with no volume (not for indices, which report none);
- stale: the last bar is older than the last session that should be in by `now`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

# A session's daily bar is expected this long after its close (providers publish with some delay).
DAILY_GRACE = timedelta(hours=2)


@dataclass(frozen=True, kw_only=True)
class Finding:
    kind: str
    start: datetime
    end: datetime
    details: dict[str, Any] = field(default_factory=dict)


def _expected(calendar, timeframe_bar: timedelta | None, start: date, end: date) -> list[datetime]:
    """UTC open times the calendar expects: session days at local midnight (daily), or session bars."""
    days = calendar.trading_days(start, end)
    if timeframe_bar is None:
        return [datetime.combine(d, time(), calendar.tz).astimezone(UTC) for d in days]
    return [ts for d in days for ts in calendar.session_bars(d, timeframe_bar)]


def last_expected_bar(calendar, timeframe_bar: timedelta | None, now: datetime) -> datetime | None:
    """Open time of the newest bar that should be stored by `now` (closed, plus the daily grace)."""
    local_today = now.astimezone(calendar.tz).date()
    for back in range(0, 40):
        day = local_today - timedelta(days=back)
        if not calendar.is_trading_day(day):
            continue
        if timeframe_bar is None:
            _, closes = calendar.session_hours(day)
            if closes + DAILY_GRACE <= now:
                return datetime.combine(day, time(), calendar.tz).astimezone(UTC)
            continue
        done = [ts for ts in calendar.session_bars(day, timeframe_bar) if ts + timeframe_bar <= now]
        if done:
            return done[-1]
    return None


def check_candles(
    candles: pd.DataFrame,
    *,
    calendar,
    intraday_bar: timedelta | None,
    now: datetime,
    action_days: set[date] = frozenset(),
    k: float = 8.0,
    min_zero_run: int = 3,
    expect_volume: bool = True,
) -> list[Finding]:
    """Every finding for one (symbol, timeframe) frame; `intraday_bar` is None for daily bars."""
    if candles.empty:
        return []
    findings: list[Finding] = []
    index = candles.index
    if index.has_duplicates:
        for ts in index[index.duplicated()].unique():
            findings.append(Finding(kind="duplicate", start=ts.to_pydatetime(), end=ts.to_pydatetime()))
    if not index.is_monotonic_increasing:
        back = np.flatnonzero(np.diff(index.asi8) < 0)
        for i in back:
            findings.append(
                Finding(
                    kind="non_monotonic",
                    start=index[i + 1].to_pydatetime(),
                    end=index[i].to_pydatetime(),
                    details={"position": int(i + 1)},
                )
            )
    candles = candles[~index.duplicated()].sort_index()
    index = candles.index

    local = index.tz_convert(calendar.tz)
    if intraday_bar is None:
        outside = ~np.array([calendar.is_trading_day(d) for d in local.date])
    else:
        outside = ~calendar.session_mask(index)
    for ts in index[outside]:
        findings.append(Finding(kind="outside_session", start=ts.to_pydatetime(), end=ts.to_pydatetime()))

    last_due = last_expected_bar(calendar, intraday_bar, now)
    first_day = local[0].date()
    end_day = max(local[-1].date(), last_due.astimezone(calendar.tz).date()) if last_due else local[-1].date()
    expected = [
        ts for ts in _expected(calendar, intraday_bar, first_day, end_day) if last_due and ts <= last_due
    ]
    present = set(index)
    gap: list[datetime] = []  # a run of consecutive expected bars that are not stored
    for ts in [*expected, None]:
        if ts is not None and ts not in present:
            gap.append(ts)
        elif gap:
            findings.append(Finding(kind="missing", start=gap[0], end=gap[-1], details={"bars": len(gap)}))
            gap = []

    if last_due is not None and index[-1] < last_due:
        findings.append(
            Finding(
                kind="stale",
                start=index[-1].to_pydatetime(),
                end=last_due,
                details={"last_bar": index[-1].isoformat(), "expected_by_now": last_due.isoformat()},
            )
        )
    findings += _jumps(candles, calendar, action_days, k)
    if expect_volume:
        findings += _zero_volume_runs(candles, min_zero_run)
    return findings


def _atr(candles: pd.DataFrame, period: int = 14) -> pd.Series:
    import pandas as pd

    prev_close = candles["close"].shift()
    true_range = pd.concat(
        [
            candles["high"] - candles["low"],
            (candles["high"] - prev_close).abs(),
            (candles["low"] - prev_close).abs(),
        ],
        axis=1,
    ).max(axis=1)
    # The range known before the bar: a jump must not hide inside its own ATR.
    return true_range.rolling(period, min_periods=period).mean().shift()


def _jumps(candles: pd.DataFrame, calendar, action_days: set[date], k: float) -> list[Finding]:
    import pandas as pd

    atr = _atr(candles)
    prev_close = candles["close"].shift()
    move = pd.concat(
        [(candles["close"] - prev_close).abs(), (candles["open"] - prev_close).abs()], axis=1
    ).max(axis=1)
    flagged = (move > k * atr) & atr.notna()
    out = []
    for ts in candles.index[flagged.to_numpy()]:
        day = ts.tz_convert(calendar.tz).date()
        if day in action_days:
            continue
        out.append(
            Finding(
                kind="jump",
                start=ts.to_pydatetime(),
                end=ts.to_pydatetime(),
                details={
                    "move": round(float(move[ts]), 4),
                    "atr": round(float(atr[ts]), 4),
                    "atr_multiple": round(float(move[ts] / atr[ts]), 2),
                    "previous_close": float(prev_close[ts]),
                },
            )
        )
    return out


def _zero_volume_runs(candles: pd.DataFrame, min_run: int) -> list[Finding]:
    zero = (candles["volume"] == 0).to_numpy()
    out = []
    i = 0
    while i < len(zero):
        if not zero[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(zero) and zero[j + 1]:
            j += 1
        if j - i + 1 >= min_run:
            out.append(
                Finding(
                    kind="zero_volume",
                    start=candles.index[i].to_pydatetime(),
                    end=candles.index[j].to_pydatetime(),
                    details={"bars": j - i + 1},
                )
            )
        i = j + 1
    return out
