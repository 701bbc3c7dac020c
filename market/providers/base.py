"""The provider interface and the candle frame every provider returns.

Candle frame: a DataFrame indexed by a UTC-aware DatetimeIndex named "timestamp" holding each bar's
OPEN time (daily and weekly bars open at exchange-local midnight, 18:30 UTC the day before for IST),
sorted ascending with unique timestamps (microsecond resolution, like Python's datetime); columns
exactly open, high, low, close (float64) and volume (int64).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from market.providers.errors import ProviderError, ProviderUnavailable, SymbolNotFound
from market.timeframes import Timeframe

PRICE_COLUMNS = ("open", "high", "low", "close")
CANDLE_COLUMNS = (*PRICE_COLUMNS, "volume")
INDEX_NAME = "timestamp"
INDEX_UNIT = "us"

# Long enough to span any exchange closure, so the last two daily closes are in it.
QUOTE_LOOKBACK = timedelta(days=30)


class LookbackExceeded(ValueError):
    """The request reaches further back than the provider serves this timeframe."""


@dataclass(frozen=True, kw_only=True)
class Quote:
    """Latest price of a symbol with its change against the previous session's close.

    `timestamp` is the open time (UTC) of the daily bar the price comes from; `previous_close`,
    `change` and `change_percent` are None when there is no earlier session.
    """

    symbol: str
    price: float
    change: float | None
    change_percent: float | None
    open: float
    high: float
    low: float
    previous_close: float | None
    volume: int
    timestamp: datetime
    currency: str
    source: str


def empty_candles() -> pd.DataFrame:
    """A candle frame with no rows (but the right columns, dtypes and index)."""
    index = pd.DatetimeIndex([], tz=UTC, name=INDEX_NAME).as_unit(INDEX_UNIT)
    frame = pd.DataFrame({column: pd.Series(dtype="float64", index=index) for column in PRICE_COLUMNS})
    frame["volume"] = pd.Series(dtype="int64", index=index)
    return frame


def normalize_candles(frame: pd.DataFrame) -> pd.DataFrame:
    """Bring an OHLCV frame with an aware index (any column case, extra columns) to the candle convention.

    Rows with a missing price are dropped, a missing volume counts as 0, and a repeated timestamp keeps
    its last row (the most recent version of that bar).
    """
    if frame.empty:
        return empty_candles()
    if not isinstance(frame.index, pd.DatetimeIndex) or frame.index.tz is None:
        raise ValueError("Candle frames need a timezone-aware DatetimeIndex")
    renamed = frame.rename(columns=lambda column: str(column).strip().lower())
    missing = [column for column in CANDLE_COLUMNS if column not in renamed.columns]
    if missing:
        raise ValueError(f"Candle frame lacks columns: {', '.join(missing)}")
    candles = renamed.loc[:, list(CANDLE_COLUMNS)].copy()
    candles[list(PRICE_COLUMNS)] = candles[list(PRICE_COLUMNS)].astype("float64")
    candles = candles.dropna(subset=list(PRICE_COLUMNS))
    candles["volume"] = pd.to_numeric(candles["volume"]).fillna(0).round().astype("int64")
    candles.index = candles.index.tz_convert(UTC).as_unit(INDEX_UNIT)
    candles.index.name = INDEX_NAME
    candles = candles[~candles.index.duplicated(keep="last")]
    return candles.sort_index()


def validate_candles(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split candles into (valid, rejected): a bar is valid when its prices are finite and positive,
    low <= min(open, close), max(open, close) <= high and volume >= 0."""
    prices = frame[list(PRICE_COLUMNS)].to_numpy(dtype="float64")
    finite_positive = np.isfinite(prices).all(axis=1) & (prices > 0).all(axis=1)
    body_low = frame[["open", "close"]].min(axis=1)
    body_high = frame[["open", "close"]].max(axis=1)
    ok = finite_positive & (frame["low"] <= body_low) & (body_high <= frame["high"]) & (frame["volume"] >= 0)
    ok = ok.to_numpy(dtype=bool)
    return frame[ok], frame[~ok]


def slice_candles(candles: pd.DataFrame, start: datetime | None, end: datetime | None) -> pd.DataFrame:
    """Bars whose open time lies in [start, end)."""
    mask = np.ones(len(candles), dtype=bool)
    if start is not None:
        mask &= candles.index >= pd.Timestamp(require_aware(start, "start"))
    if end is not None:
        mask &= candles.index < pd.Timestamp(require_aware(end, "end"))
    return candles[mask]


def require_aware(value: datetime, name: str) -> datetime:
    """Reject naive datetimes: every time in this project carries its zone."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value


@dataclass(frozen=True, kw_only=True)
class BatchCandles:
    """What one batch fetch got: per symbol, exactly what `fetch_candles` returns for it (so whatever a single
    fetch carries rides along), or the provider error that symbol ended with. Every requested symbol is in one
    of the two."""

    candles: dict[str, pd.DataFrame]
    errors: dict[str, ProviderError]


class Provider(ABC):
    """A source of candles and quotes; implementations raise only market.providers.errors (and ValueError
    subclasses such as LookbackExceeded for requests they cannot serve)."""

    name: str

    @abstractmethod
    def fetch_candles(
        self,
        symbol: str,
        timeframe: Timeframe,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        """Candles of `symbol` whose open time lies in [start, end) (provider defaults when None)."""

    def fetch_candles_batch(
        self,
        symbols: list[str],
        timeframe: Timeframe,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> BatchCandles:
        """Candles of many symbols over one window (providers with a multi-symbol request override this).

        One symbol's error never fails the others; an outage (ProviderUnavailable, RateLimited) stops the batch
        and is the error of every symbol not fetched yet, so a caller retries them later instead of hammering
        a provider that is down."""
        candles: dict[str, pd.DataFrame] = {}
        errors: dict[str, ProviderError] = {}
        for position, symbol in enumerate(symbols):
            try:
                candles[symbol] = self.fetch_candles(symbol, timeframe, start=start, end=end)
            except ProviderUnavailable as error:
                errors.update(dict.fromkeys(symbols[position:], error))
                break
            except ProviderError as error:
                errors[symbol] = error
        return BatchCandles(candles=candles, errors=errors)

    def fetch_quote(self, symbol: str) -> Quote:
        """The last daily close against the one before it, from the recent daily candles."""
        now = self._now()
        candles = self.fetch_candles(symbol, Timeframe.D1, start=now - QUOTE_LOOKBACK, end=now)
        return self.quote_from_candles(symbol, candles)

    def fetch_quotes(self, symbols: list[str]) -> dict[str, Quote]:
        """Quotes of many symbols in one call (providers with a batch endpoint override this); a symbol without
        a quote is left out, so one unknown symbol never fails the batch. Outages still raise."""
        quotes = {}
        for symbol in symbols:
            try:
                quotes[symbol] = self.fetch_quote(symbol)
            except SymbolNotFound:
                continue
        return quotes

    def quote_from_candles(self, symbol: str, candles: pd.DataFrame) -> Quote:
        """The quote of the last daily candle against the close before it."""
        if candles.empty:
            raise SymbolNotFound(symbol, f"No recent daily candles for symbol {symbol!r}")
        last = candles.iloc[-1]
        previous_close = float(candles["close"].iloc[-2]) if len(candles) > 1 else None
        price = float(last["close"])
        change = price - previous_close if previous_close is not None else None
        change_percent = change / previous_close * 100 if change is not None and previous_close else None
        return Quote(
            symbol=symbol,
            price=price,
            change=change,
            change_percent=change_percent,
            open=float(last["open"]),
            high=float(last["high"]),
            low=float(last["low"]),
            previous_close=previous_close,
            volume=int(last["volume"]),
            timestamp=candles.index[-1].to_pydatetime(),
            currency=self.currency_for(symbol),
            source=self.name,
        )

    def currency_for(self, symbol: str) -> str:
        """Quote currency of `symbol`: rupees, as every NSE/BSE listing and Indian index is priced in INR."""
        return "INR"

    def _now(self) -> datetime:
        """Current time; providers with an injectable clock override this."""
        return datetime.now(UTC)
