"""Corporate-action adjustment of a candle frame at read time. Pure (no ORM).

Candles are stored as traded. Every bar before an action's ex-date is scaled so the series is continuous
across it, the way exchanges and Yahoo adjust: a split or bonus of `ratio` new shares per old divides prices by
the ratio and multiplies volume by it; a dividend multiplies prices by (1 − amount / previous close); a staff
`factor` (a demerger's cost split) multiplies prices. `splits` applies only what changes the share count
(splits and bonuses: no value leaves the company, so the series is what a holder's position was worth per
share of today); `all` adds what is paid out (dividends and staff factors for demergers: a total-return series).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

Adjustment = Literal["none", "splits", "all"]
ADJUSTMENTS: tuple[Adjustment, ...] = ("none", "splits", "all")
# What each adjustment is called where a response or a backtest says which series it used.
SERIES_NAMES: dict[str, str] = {"none": "as-traded", "splits": "split-adjusted", "all": "total-return"}
SHARE_COUNT_KINDS = ("split", "bonus")


@dataclass(frozen=True, kw_only=True)
class Action:
    ex_date: date
    kind: str  # split | bonus | dividend | adjustment
    ratio: float | None = None
    amount: float | None = None
    factor: float | None = None
    # Dividends: the stored close of the session before the ex-date, when the caller knows it; otherwise the
    # last close before the ex-date among the bars being adjusted.
    previous_close: float | None = None


def applies(action: Action, mode: Adjustment) -> bool:
    """Whether `mode` adjusts for this kind of action."""
    return mode == "all" or (mode == "splits" and action.kind in SHARE_COUNT_KINDS)


def day_factors(
    days: Sequence[date] | np.ndarray,
    closes: Sequence[float] | np.ndarray,
    actions: list[Action],
    *,
    mode: Adjustment,
) -> tuple[np.ndarray, np.ndarray]:
    """(price multiplier, volume multiplier) per bar of the given exchange-local days (in time order): the
    product over the `mode` actions whose ex-date is after the bar's day."""
    if mode not in ADJUSTMENTS:
        raise ValueError(f"adjust must be one of {', '.join(ADJUSTMENTS)}")
    n = len(days)
    prices, volumes = np.ones(n), np.ones(n)
    if mode == "none" or n == 0:
        return prices, volumes
    days = np.asarray(days)
    closes = np.asarray(closes, dtype="float64")
    for action in actions:
        if not applies(action, mode):
            continue
        before = days < action.ex_date
        if not before.any():
            continue
        if action.kind in SHARE_COUNT_KINDS and action.ratio:
            prices[before] /= action.ratio
            volumes[before] *= action.ratio
        elif action.kind == "adjustment" and action.factor:
            prices[before] *= action.factor
        elif action.kind == "dividend" and action.amount:
            previous_close = action.previous_close or closes[np.flatnonzero(before)[-1]]
            if previous_close > action.amount:
                prices[before] *= 1 - action.amount / previous_close
    return prices, volumes


def price_factors(
    candles: pd.DataFrame, actions: list[Action], *, mode: Adjustment, tz
) -> tuple[np.ndarray, np.ndarray]:
    """(price multiplier, volume multiplier) per bar: the product over actions whose ex-date is after the bar."""
    days = np.array(candles.index.tz_convert(tz).date) if len(candles) else np.array([])
    return day_factors(days, candles["close"].to_numpy(), actions, mode=mode)


def adjust_candles(candles: pd.DataFrame, actions: list[Action], *, mode: Adjustment, tz) -> pd.DataFrame:
    """A copy of the candle frame with the `mode` adjustment applied (the frame itself when there is none)."""
    prices, volumes = price_factors(candles, actions, mode=mode, tz=tz)
    if (prices == 1).all() and (volumes == 1).all():
        return candles
    adjusted = candles.copy()
    for column in ("open", "high", "low", "close"):
        adjusted[column] = adjusted[column].to_numpy() * prices
    adjusted["volume"] = np.rint(adjusted["volume"].to_numpy() * volumes).astype("int64")
    return adjusted


def split_ratio_between(actions: list[Action], *, after: date, through: date) -> float:
    """The product of the share-count ratios with an ex-date in (after, through]: what a price from `after`
    is divided by to compare it with one from `through` (1.0 when there is none)."""
    ratio = 1.0
    for action in actions:
        if action.kind in SHARE_COUNT_KINDS and action.ratio and after < action.ex_date <= through:
            ratio *= action.ratio
    return ratio


def split_ratio_between_times(
    actions: list[Action], *, earlier: datetime, later: datetime, tz: tzinfo
) -> float:
    """split_ratio_between for two instants, each dated in the exchange's zone `tz`: what a price of the bar
    opening at `earlier` is divided by to compare it with one of the bar opening at `later`."""
    return split_ratio_between(
        actions, after=earlier.astimezone(tz).date(), through=later.astimezone(tz).date()
    )


def action_days(actions: list[Action], *, mode: Adjustment = "all") -> set[date]:
    """Ex-dates that explain a price jump in the stored (unadjusted) series."""
    return {a.ex_date for a in actions if mode == "all" or a.kind in SHARE_COUNT_KINDS}
