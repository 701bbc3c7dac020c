"""Candle timeframes: the seed's names, their yfinance intervals and Yahoo's lookback limits, and which coarser
timeframes are built from finer stored bars (market/resample.py) rather than fetched."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import models


class Timeframe(models.TextChoices):
    M1 = "1m", "1 minute"
    M5 = "5m", "5 minutes"
    M15 = "15m", "15 minutes"
    H1 = "1H", "1 hour"
    H4 = "4H", "4 hours"  # built from 15m/5m bars only
    D1 = "1D", "1 day"
    W1 = "1W", "1 week"
    MN1 = "1M", "1 month"  # built from daily bars only

    @classmethod
    def parse(cls, value: str, *, stored_only: bool = True) -> Timeframe:
        """Accept the seed's spelling and the lower-case aliases (1h, 4h, 1d, 1w). Syncs, tasks and commands
        work on stored series: a derived-only timeframe (4H, 1M) is refused unless `stored_only` is off."""
        aliases = {"1h": cls.H1, "4h": cls.H4, "1d": cls.D1, "1w": cls.W1}
        timeframe = cls(value) if value in cls.values else aliases.get(value)
        valid = [tf.value for tf in (cls if not stored_only else STORED_TIMEFRAMES)]
        if timeframe is None:
            raise ValueError(f"Unknown timeframe {value!r}; use one of {', '.join(valid)}")
        if stored_only and not timeframe.is_stored:
            raise ValueError(
                f"{timeframe.value} bars are built from finer stored ones on read, not stored; "
                f"use one of {', '.join(valid)}"
            )
        return timeframe

    @property
    def is_intraday(self) -> bool:
        return self in (Timeframe.M1, Timeframe.M5, Timeframe.M15, Timeframe.H1, Timeframe.H4)

    @property
    def is_stored(self) -> bool:
        """Fetched from providers and stored; the others exist only as bars built from finer stored ones."""
        return self in STORED_TIMEFRAMES

    @property
    def spec(self) -> TimeframeSpec:
        return _SPECS[self]


@dataclass(frozen=True)
class TimeframeSpec:
    yf_interval: str | None  # None: no provider serves it; built from finer bars only
    bar: timedelta
    # Yahoo serves intraday bars only this far back (None: unlimited).
    max_lookback: timedelta | None
    # And at most this much per request (None: unlimited).
    max_per_request: timedelta | None


_SPECS: dict[Timeframe, TimeframeSpec] = {
    Timeframe.M1: TimeframeSpec("1m", timedelta(minutes=1), timedelta(days=30), timedelta(days=7)),
    Timeframe.M5: TimeframeSpec("5m", timedelta(minutes=5), timedelta(days=60), None),
    Timeframe.M15: TimeframeSpec("15m", timedelta(minutes=15), timedelta(days=60), None),
    Timeframe.H1: TimeframeSpec("1h", timedelta(hours=1), timedelta(days=730), None),
    Timeframe.D1: TimeframeSpec("1d", timedelta(days=1), None, None),
    Timeframe.W1: TimeframeSpec("1wk", timedelta(weeks=1), None, None),
    Timeframe.H4: TimeframeSpec(None, timedelta(hours=4), None, None),
    Timeframe.MN1: TimeframeSpec(None, timedelta(days=31), None, None),  # the longest month
}

# What providers fetch and the candle table stores (its `timeframe` choices; no migration for derived ones).
STORED_TIMEFRAMES = (Timeframe.M1, Timeframe.M5, Timeframe.M15, Timeframe.H1, Timeframe.D1, Timeframe.W1)
STORED_TIMEFRAME_CHOICES = [(tf.value, tf.label) for tf in STORED_TIMEFRAMES]

# Finer stored timeframes a timeframe can be built from, preferred first. Weeks and months always come from the
# daily series (the one kept complete and checked, so a week agrees with its days bar for bar; no request when
# the days are stored); 4H always, and 1H when the provider lacks it or its lookback, from 15m (else 5m) bars.
BUILT_FROM: dict[Timeframe, tuple[Timeframe, ...]] = {
    Timeframe.W1: (Timeframe.D1,),
    Timeframe.MN1: (Timeframe.D1,),
    Timeframe.H1: (Timeframe.M15, Timeframe.M5),
    Timeframe.H4: (Timeframe.M15, Timeframe.M5),
}
