"""The cached historical body can never hold older candles than its key's version promises."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection

from market.presentation import price
from market.services import candles_sync
from market.tests.factories import FrameProvider, make_candles
from market.timeframes import Timeframe

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 1, 6, 30, tzinfo=UTC)
LISTED = datetime(2026, 1, 1, 18, 30, tzinfo=UTC)


def test_a_sync_committing_between_read_and_cache_write_never_leaves_old_candles_cached(
    auth_client, monkeypatch
):
    candles = make_candles((NOW - LISTED).days, start=LISTED)
    provider = FrameProvider({("TCS.NS", Timeframe.D1): candles})
    for where in ("market.sources", "market.selectors", "market.services"):
        monkeypatch.setattr(f"{where}.get_provider", lambda name=None: provider)
    corrected = candles.copy()
    corrected.iloc[-1, corrected.columns.get_loc("close")] *= 1.001  # Yahoo corrects the last bar
    corrected.iloc[-1, corrected.columns.get_loc("high")] = corrected[["high", "close"]].iloc[-1].max()
    synced = []

    def sync_right_after_the_candle_read(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if (
            "FROM market_marketdata" in sql and "LIMIT %(limit)s" in sql and not synced
        ):  # the historical read itself, at the worst moment
            synced.append(True)
            provider.frames[("TCS.NS", Timeframe.D1)] = corrected
            candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=10, provider=provider)
        return result

    with time_machine.travel(NOW, tick=False):
        auth_client.get("/api/market/historical/TCS?start=2026-05-01&limit=100")  # fetch and store
        with connection.execute_wrapper(sync_right_after_the_candle_read):
            raced = auth_client.get("/api/market/historical/TCS?start=2026-05-01&limit=50").json()
        after = auth_client.get("/api/market/historical/TCS?start=2026-05-01&limit=50").json()
    assert synced
    # Prices are shown at the tick of an NSE equity (0.05).
    assert raced["candles"][-1]["close"] == price(
        candles["close"].iloc[-1], tick=0.05
    )  # read before the sync
    assert after["candles"][-1]["close"] == price(corrected["close"].iloc[-1], tick=0.05)
