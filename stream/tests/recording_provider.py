"""A provider for tests, named in MARKET_DATA_PROVIDER as `stream.tests.recording_provider:build`: the synthetic
provider (the project's offline market), recording each batch it is asked for."""

from __future__ import annotations

from market.providers.errors import ProviderUnavailable
from market.providers.synthetic import SyntheticProvider
from market.sources import get_calendar

batches: list[list[str]] = []
# The batch numbers (from 1) the provider fails, as Yahoo down would.
failing: set[int] = set()


class RecordingProvider(SyntheticProvider):
    def fetch_quotes(self, symbols: list[str]):
        batches.append(list(symbols))
        if len(batches) in failing:
            raise ProviderUnavailable("Yahoo Finance did not answer", retry_after=30)
        return super().fetch_quotes(symbols)


def build() -> RecordingProvider:
    return RecordingProvider(
        symbols=lambda: {"RELIANCE.NS", "TCS.NS", "INFY.NS", "SBIN.NS"}, calendar=get_calendar()
    )
