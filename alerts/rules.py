"""The alert state machine, pure: given an alert's state and a new value, fire or not, and the next state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from market.presentation import pct, price
from market.timeframes import Timeframe


@dataclass(frozen=True, kw_only=True)
class Transition:
    fire: bool
    armed: bool


def candles_feed_price_alerts(timeframe: str) -> bool:
    """Only daily and intraday bars say what the price is today; a weekly or monthly bar's change is the change
    over the week or month, which a change alert (today's change) must never see."""
    return timeframe in Timeframe.values and (Timeframe(timeframe).is_intraday or timeframe == Timeframe.D1)


def beyond(kind: str, value: float, threshold: float) -> bool:
    """Whether the value is on the alerting side of the threshold (reaching it counts)."""
    return value >= threshold if kind.endswith("_above") else value <= threshold


def in_cooldown(*, last_fired_at: datetime | None, cooldown_minutes: int, now: datetime) -> bool:
    return last_fired_at is not None and now < last_fired_at + timedelta(minutes=cooldown_minutes)


def threshold_transition(
    *,
    kind: str,
    threshold: float,
    armed: bool,
    value: float,
    last_fired_at: datetime | None,
    cooldown_minutes: int,
    now: datetime,
) -> Transition:
    """Fire once per crossing. Beyond the threshold an armed alert fires and disarms; back on the other side it
    re-arms. A crossing within the cooldown of the last firing is swallowed (disarmed without firing), so a price
    oscillating around the threshold cannot page anyone more than once per cooldown."""
    if not beyond(kind, value, threshold):
        return Transition(fire=False, armed=True)
    if not armed:
        return Transition(fire=False, armed=False)
    cooling = in_cooldown(last_fired_at=last_fired_at, cooldown_minutes=cooldown_minutes, now=now)
    return Transition(fire=not cooling, armed=False)


def event_value_shown(*, kind: str, value: float | None, tick) -> float | None:
    """An event's value as people read it (the renderers round by key, and `value` holds a price or a
    percentage by the event's kind): a change alert's a percentage at 2 decimals, the others' a traded price
    at the symbol's `tick`."""
    if value is None:
        return None
    if kind in ("change_pct_above", "change_pct_below"):
        return pct(value)
    return price(value, tick=tick)
