from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import factory
import numpy as np
import pandas as pd

from market.adjust import Action
from market.models import CorporateAction, Instrument, MarketData
from market.providers.base import History, Provider, empty_candles, slice_actions
from market.providers.errors import ProviderUnavailable, SymbolNotFound
from market.timeframes import Timeframe


class InstrumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Instrument
        django_get_or_create = ("symbol",)

    symbol = factory.Sequence(lambda n: f"TEST{n}.NS")
    name = factory.LazyAttribute(lambda o: o.symbol)


class MarketDataFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MarketData

    symbol = "TCS.NS"
    timeframe = Timeframe.D1.value
    timestamp = factory.Sequence(lambda n: datetime(2020, 1, 1, 18, 30, tzinfo=UTC) + timedelta(days=n))
    open_price = 100.0
    high_price = 105.0
    low_price = 95.0
    close_price = 102.0
    volume = 1000
    source = "test"


class CorporateActionFactory(factory.django.DjangoModelFactory):
    """A 1:2 split of TCS.NS entered by staff; pass kind/ratio/amount/factor for the others."""

    class Meta:
        model = CorporateAction

    symbol = "TCS.NS"
    ex_date = date(2026, 6, 2)
    kind = CorporateAction.Kind.SPLIT
    ratio = 2.0
    source = CorporateAction.STAFF


def make_candles(
    n: int,
    *,
    start: datetime = datetime(2024, 1, 1, 18, 30, tzinfo=UTC),
    step=timedelta(days=1),
    base: float = 100.0,
    seed: int = 1,
) -> pd.DataFrame:
    """A valid candle frame of n bars (random walk)."""
    rng = np.random.default_rng(seed)
    close = base * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[base], close[:-1]])
    high = np.maximum(open_, close) * 1.01
    low = np.minimum(open_, close) * 0.99
    index = pd.DatetimeIndex([start + i * step for i in range(n)], name="timestamp").as_unit("us")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": rng.integers(1000, 5000, n)},
        index=index,
    )


def make_candles_at(stamps: list[datetime], *, seed: int = 1) -> pd.DataFrame:
    """make_candles' random walk with a bar opening at each of the aware `stamps`, indexed in UTC as providers
    return them."""
    frame = make_candles(len(stamps), seed=seed)
    frame.index = pd.DatetimeIndex(stamps).tz_convert(UTC).as_unit("us")
    return frame.rename_axis("timestamp")


class FrameProvider(Provider):
    """A provider over in-memory frames: stands in for Yahoo at the boundary (what it returns, how it fails), with
    the corporate actions of each symbol (dated in IST) reported for the windows that hold them."""

    name = "frame"

    def __init__(
        self,
        frames: dict[tuple[str, Timeframe], pd.DataFrame] | None = None,
        *,
        fail: Exception | None = None,
        actions: dict[str, list[Action]] | None = None,
    ):
        self.frames = frames or {}
        self.fail = fail
        self.actions = actions or {}
        self.calls: list[tuple[str, Timeframe, datetime | None, datetime | None]] = []

    def fetch_history(self, symbol, timeframe, *, start=None, end=None):
        candles = self.fetch_candles(symbol, timeframe, start=start, end=end)
        actions = slice_actions(self.actions.get(symbol, []), start, end, tz=self.time_zone_for(symbol))
        return History(candles=candles, actions=actions)

    def time_zone_for(self, symbol):
        return ZoneInfo("Asia/Kolkata")

    def fetch_candles(self, symbol, timeframe, *, start=None, end=None):
        self.calls.append((symbol, timeframe, start, end))
        if self.fail is not None:
            raise self.fail
        if (symbol, timeframe) not in self.frames:
            raise SymbolNotFound(symbol)
        frame = self.frames[(symbol, timeframe)]
        if start is not None:
            frame = frame[frame.index >= start]
        if end is not None:
            frame = frame[frame.index < end]
        return frame if len(frame) else empty_candles()


def down_provider() -> FrameProvider:
    return FrameProvider(fail=ProviderUnavailable("Yahoo Finance did not answer", retry_after=30))


def provider_configured(monkeypatch, provider):
    """Make `provider` the configured market data provider everywhere the app asks for it (the catalogue's
    sources, the selectors and the services); returns it."""
    configured = lambda name=None: provider  # noqa: E731 - get_provider's signature
    monkeypatch.setattr("market.sources.get_provider", configured)
    monkeypatch.setattr("market.selectors.get_provider", configured)
    monkeypatch.setattr("market.services.get_provider", configured)
    return provider
