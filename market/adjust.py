"""Corporate-action adjustment of a candle frame at read time. Pure (no ORM).

Candles are stored as traded. Every bar before an action's ex-date is scaled so the series is continuous
across it, the way exchanges and Yahoo adjust: a split or bonus of `ratio` new shares per old divides prices by
the ratio and multiplies volume by it; a dividend multiplies prices by (1 − amount / previous close); a staff
`factor` (a demerger's cost split) multiplies prices. `splits` applies splits, bonuses and staff factors (no
cash leaves the company); `all` adds dividends (a total-return series).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd

Adjustment = Literal["none", "splits", "all"]
ADJUSTMENTS: tuple[Adjustment, ...] = ("none", "splits", "all")


@dataclass(frozen=True, kw_only=True)
class Action:
    ex_date: date
    kind: str  # split | bonus | dividend | adjustment
    ratio: float | None = None
    amount: float | None = None
    factor: float | None = None


def price_factors(
    candles: pd.DataFrame, actions: list[Action], *, mode: Adjustment, tz
) -> tuple[np.ndarray, np.ndarray]:
    """(price multiplier, volume multiplier) per bar: the product over actions whose ex-date is after the bar."""
    n = len(candles)
    prices, volumes = np.ones(n), np.ones(n)
    if mode == "none" or n == 0:
        return prices, volumes
    days = np.array(candles.index.tz_convert(tz).date)
    closes = candles["close"].to_numpy()
    for action in actions:
        before = days < action.ex_date
        if not before.any():
            continue
        if action.kind in ("split", "bonus") and action.ratio:
            prices[before] /= action.ratio
            volumes[before] *= action.ratio
        elif action.kind == "adjustment" and action.factor:
            prices[before] *= action.factor
        elif action.kind == "dividend" and action.amount and mode == "all":
            previous_close = closes[np.flatnonzero(before)[-1]]
            if previous_close > action.amount:
                prices[before] *= 1 - action.amount / previous_close
    return prices, volumes


def adjust_candles(candles: pd.DataFrame, actions: list[Action], *, mode: Adjustment, tz) -> pd.DataFrame:
    """A copy of the candle frame with the `mode` adjustment applied (the frame itself when there is none)."""
    if mode not in ADJUSTMENTS:
        raise ValueError(f"adjust must be one of {', '.join(ADJUSTMENTS)}")
    prices, volumes = price_factors(candles, actions, mode=mode, tz=tz)
    if (prices == 1).all() and (volumes == 1).all():
        return candles
    adjusted = candles.copy()
    for column in ("open", "high", "low", "close"):
        adjusted[column] = adjusted[column].to_numpy() * prices
    adjusted["volume"] = np.rint(adjusted["volume"].to_numpy() * volumes).astype("int64")
    return adjusted


def action_days(actions: list[Action], *, mode: Adjustment = "all") -> set[date]:
    """Ex-dates that explain a price jump in the stored (unadjusted) series."""
    return {a.ex_date for a in actions if mode == "all" or a.kind != "dividend"}
