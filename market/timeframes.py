"""Candle timeframes: the seed's names, their yfinance intervals and Yahoo's lookback limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import models


class Timeframe(models.TextChoices):
    M1 = "1m", "1 minute"
    M5 = "5m", "5 minutes"
    M15 = "15m", "15 minutes"
    H1 = "1H", "1 hour"
    D1 = "1D", "1 day"
    W1 = "1W", "1 week"

    @classmethod
    def parse(cls, value: str) -> Timeframe:
        """Accept the seed's spelling and the lower-case aliases (1h, 1d, 1w)."""
        aliases = {"1h": cls.H1, "1d": cls.D1, "1w": cls.W1}
        if value in cls.values:
            return cls(value)
        if value in aliases:
            return aliases[value]
        raise ValueError(f"Unknown timeframe {value!r}; use one of {', '.join(cls.values)}")

    @property
    def is_intraday(self) -> bool:
        return self in (Timeframe.M1, Timeframe.M5, Timeframe.M15, Timeframe.H1)

    @property
    def spec(self) -> TimeframeSpec:
        return _SPECS[self]


@dataclass(frozen=True)
class TimeframeSpec:
    yf_interval: str
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
}
