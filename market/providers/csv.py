"""Candles from CSV files in the format of yfinance's `history().to_csv()`, one file per symbol and timeframe.

`{directory}/{SYMBOL}_{TIMEFRAME}.csv`, e.g. `RELIANCE.NS_1D.csv`, `^NSEI_1D.csv`, `TCS.NS_5m.csv`. The first
column is `Date` or `Datetime` (or `timestamp`, our own export) with UTC offsets such as
`2024-01-02 00:00:00+05:30`; timestamps (or dates) without an offset are read as the time of the symbol's
exchange (`tz`: one zone for every file, or a callable giving each symbol's zone, e.g. America/New_York for
^GSPC). Open, High, Low,
Close and Volume are used; Dividends, Stock Splits, Adj Close and any other column are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pandas as pd

from market.providers.base import Provider, empty_candles, normalize_candles, slice_candles
from market.providers.errors import ProviderError, SymbolNotFound
from market.symbols import InvalidSymbol
from market.timeframes import Timeframe

TIME_COLUMNS = ("Date", "Datetime", "timestamp")
_OFFSET_PATTERN = r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}:?\d{2})$"


class CsvProvider(Provider):
    """Reads candles from files; useful offline, for fixtures and for back-filling from exported data."""

    name = "csv"

    def __init__(self, *, directory: str | Path, tz: str | Callable[[str], str] = "Asia/Kolkata"):
        self.directory = Path(directory).resolve()
        self.tz = tz

    def fetch_candles(
        self,
        symbol: str,
        timeframe: Timeframe,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        """Candles from the symbol's file for this timeframe opening in [start, end).

        SymbolNotFound when the directory has no file for the symbol at all; an empty frame when it has
        files for other timeframes only.
        """
        path = self._path(symbol, timeframe)
        if not path.is_file():
            if any(self._path(symbol, other).is_file() for other in Timeframe):
                return empty_candles()
            raise SymbolNotFound(symbol, f"No CSV market data for symbol {symbol!r}")
        tz = self.tz if isinstance(self.tz, str) else self.tz(symbol)
        return slice_candles(self._read(path, tz), start, end)

    def _path(self, symbol: str, timeframe: Timeframe) -> Path:
        """The file for (symbol, timeframe), refusing any name that would leave the directory."""
        if not symbol or any(char in symbol for char in ("/", "\\", "\x00")) or symbol.strip(".") == "":
            raise InvalidSymbol(f"Invalid symbol {symbol[:32]!r} for a file name")
        path = (self.directory / f"{symbol}_{timeframe.value}.csv").resolve()
        if path.parent != self.directory:
            raise InvalidSymbol(f"Invalid symbol {symbol[:32]!r} for a file name")
        return path

    def _read(self, path: Path, tz: str) -> pd.DataFrame:
        try:
            frame = pd.read_csv(path)
        except (OSError, ValueError) as error:
            raise ProviderError(f"{path.name}: unreadable CSV ({error})") from error
        time_column = next((column for column in TIME_COLUMNS if column in frame.columns), None)
        if time_column is None:
            raise ProviderError(f"{path.name}: the first column must be one of {', '.join(TIME_COLUMNS)}")
        if frame.empty:
            return normalize_candles(frame)
        try:
            frame.index = self._timestamps(frame.pop(time_column), tz)
            return normalize_candles(frame)
        except ValueError as error:
            raise ProviderError(f"{path.name}: {error}") from error

    @staticmethod
    def _timestamps(column: pd.Series, tz: str) -> pd.DatetimeIndex:
        text = column.astype(str).str.strip()
        with_offset = text.str.contains(_OFFSET_PATTERN, regex=True)
        if with_offset.all():
            return pd.DatetimeIndex(pd.to_datetime(text, utc=True, format="ISO8601"))
        if not with_offset.any():
            return pd.DatetimeIndex(pd.to_datetime(text, format="ISO8601")).tz_localize(tz)
        raise ValueError("timestamps mix values with and without a UTC offset")
