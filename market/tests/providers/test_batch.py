"""Batch fetches: the default loop every provider inherits and the synthetic provider's own."""

from datetime import UTC, datetime

import pandas as pd
import pytest

from market.providers.errors import ProviderUnavailable, RateLimited, SymbolNotFound, UnreadableData
from market.providers.synthetic import SyntheticProvider
from market.tests.factories import FrameProvider, make_candles
from market.timeframes import Timeframe

START = datetime(2024, 1, 1, 18, 30, tzinfo=UTC)


class FlakyProvider(FrameProvider):
    """FrameProvider whose listed symbols fail with the given errors."""

    def __init__(self, frames, failures):
        super().__init__(frames)
        self.failures = failures

    def fetch_candles(self, symbol, timeframe, *, start=None, end=None):
        if symbol in self.failures:
            self.calls.append((symbol, timeframe, start, end))
            raise self.failures[symbol]
        return super().fetch_candles(symbol, timeframe, start=start, end=end)


def test_default_batch_returns_what_single_fetches_return_and_each_symbols_error():
    frames = {(s, Timeframe.D1): make_candles(10, seed=i) for i, s in enumerate(["A.NS", "B.NS", "C.NS"])}
    broken = UnreadableData("bad row", file="C.NS_1D.csv", line=3)
    provider = FlakyProvider(frames, {"C.NS": broken})

    batch = provider.fetch_history_batch(["A.NS", "NOPE.NS", "B.NS", "C.NS"], Timeframe.D1, start=START)

    assert set(batch.histories) == {"A.NS", "B.NS"}
    for symbol in batch.histories:
        pd.testing.assert_frame_equal(
            batch.histories[symbol].candles, provider.fetch_candles(symbol, Timeframe.D1, start=START)
        )
    assert isinstance(batch.errors["NOPE.NS"], SymbolNotFound)
    assert batch.errors["C.NS"] is broken


@pytest.mark.parametrize("outage", [ProviderUnavailable("down"), RateLimited("429")])
def test_an_outage_stops_the_default_batch_and_is_the_error_of_every_symbol_left(outage):
    frames = {(s, Timeframe.D1): make_candles(5) for s in ["A.NS", "B.NS", "C.NS", "D.NS"]}
    provider = FlakyProvider(frames, {"B.NS": outage})

    batch = provider.fetch_history_batch(["A.NS", "B.NS", "C.NS", "D.NS"], Timeframe.D1)

    assert set(batch.histories) == {"A.NS"}
    assert batch.errors == {"B.NS": outage, "C.NS": outage, "D.NS": outage}
    assert [call[0] for call in provider.calls] == ["A.NS", "B.NS"]  # C and D were not asked


def test_synthetic_batch_equals_single_fetches_and_reads_the_symbol_set_once(nse_calendar):
    reads = []

    def symbols():
        reads.append(1)
        return {"RELIANCE.NS", "TCS.NS"}

    now = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)
    provider = SyntheticProvider(symbols=symbols, calendar=nse_calendar, clock=lambda: now)
    start = datetime(2026, 1, 1, tzinfo=UTC)

    batch = provider.fetch_history_batch(["RELIANCE.NS", "TCS.NS", "NOPE.NS"], Timeframe.D1, start=start)

    assert len(reads) == 1
    assert set(batch.histories) == {"RELIANCE.NS", "TCS.NS"} and set(batch.errors) == {"NOPE.NS"}
    assert isinstance(batch.errors["NOPE.NS"], SymbolNotFound)
    for symbol, history in batch.histories.items():
        candles = history.candles
        assert len(candles) > 200
        pd.testing.assert_frame_equal(candles, provider.fetch_candles(symbol, Timeframe.D1, start=start))
