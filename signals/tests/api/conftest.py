"""The signals API tests' clock and history (fixtures a test module may override with its own)."""

from datetime import UTC, datetime

import pytest
import time_machine

from market.services import candles_sync
from market.sources import get_provider
from market.timeframes import Timeframe

NOW = datetime(
    2026, 6, 3, 6, 30, tzinfo=UTC
)  # Wednesday, 12:00 IST: the session is open, today's daily bar forming


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def history(frozen):
    candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
