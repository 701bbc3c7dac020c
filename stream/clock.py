"""Times in stream messages are exchange-local ISO strings (NSE: +05:30), asked of the exchange's calendar."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from market.models import Instrument
from market.sources import get_calendar


def exchange_zone(exchange: str = "NSE") -> ZoneInfo:
    return get_calendar(exchange).tz


def exchange_of(symbol: str) -> str:
    """The exchange an instrument trades on (NSE for symbols outside the catalogue)."""
    return Instrument.objects.filter(symbol=symbol).values_list("exchange", flat=True).first() or "NSE"


def exchange_time(at: datetime, exchange: str = "NSE") -> str:
    return at.astimezone(exchange_zone(exchange)).isoformat()
