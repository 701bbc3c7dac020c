"""Candles from CSV files in the format of yfinance's `history().to_csv()`, one file per symbol and timeframe.

`{directory}/{SYMBOL}_{TIMEFRAME}.csv`, e.g. `RELIANCE.NS_1D.csv`, `^NSEI_1D.csv`, `TCS.NS_5m.csv`. The first
column is `Date` or `Datetime` (or `timestamp`, our own export) with UTC offsets such as
`2024-01-02 00:00:00+05:30`; timestamps (or dates) without an offset are read as the time of the symbol's
exchange (`tz`: one zone for every file, or a callable giving each symbol's zone, e.g. America/New_York for
^GSPC). Open, High, Low,
Close and Volume are the candles; Dividends and Stock Splits (optional, 0 or blank for none) are the corporate
actions of the bar's day; Adj Close and any other column are ignored. Prices are taken as traded; a file with
Yahoo's split-adjusted prices (yfinance's own export) is read with `split_adjusted=True`, which multiplies the
bars before each split in the file back by its ratio.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from market.adjust import Action
from market.bars import in_sessions
from market.calendar import ExchangeCalendar
from market.providers.base import (
    CANDLE_COLUMNS,
    DIVIDENDS_COLUMN,
    PRICE_COLUMNS,
    SPLITS_COLUMN,
    History,
    Provider,
    actions_from_columns,
    empty_candles,
    normalize_candles,
    slice_actions,
    slice_candles,
    unadjust_splits,
    validate_candles,
)
from market.providers.errors import SymbolNotFound, UnreadableData
from market.symbols import InvalidSymbol
from market.timeframes import Timeframe

TIME_COLUMNS = ("Date", "Datetime", "timestamp")
NUMBER_COLUMNS = (*CANDLE_COLUMNS, DIVIDENDS_COLUMN.lower(), SPLITS_COLUMN.lower())
_OFFSET_PATTERN = r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}:?\d{2})$"


class CsvProvider(Provider):
    """Reads candles from files; useful offline, for fixtures and for back-filling from exported data."""

    name = "csv"

    def __init__(
        self,
        *,
        directory: str | Path,
        tz: str | Callable[[str], str] = "Asia/Kolkata",
        split_adjusted: bool = False,
        calendar: ExchangeCalendar | Callable[[str], ExchangeCalendar] | None = None,
    ):
        """`calendar`: the symbol's exchange calendar (one for every file, or a callable per symbol); given, an
        intraday file with a bar outside its sessions is refused, and a daily row on a day without a session is
        left out and reported in History.off_session (market.sources passes each symbol's)."""
        self.directory = Path(directory).resolve()
        self.tz = tz
        self.split_adjusted = split_adjusted
        self.calendar = calendar

    def fetch_candles(
        self,
        symbol: str,
        timeframe: Timeframe,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        """Candles from the symbol's file for this timeframe opening in [start, end) (see fetch_history)."""
        return self.fetch_history(symbol, timeframe, start=start, end=end).candles

    def fetch_history(
        self,
        symbol: str,
        timeframe: Timeframe,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> History:
        """Candles from the symbol's file for this timeframe opening in [start, end), and the actions of the
        bars in that window (the Dividends and Stock Splits columns; none from weekly files, whose rows do not
        say which day of the week an action was on).

        SymbolNotFound when the directory has no file for the symbol at all; an empty frame when it has
        files for other timeframes only.
        """
        path = self._path(symbol, timeframe)
        if not path.is_file():
            if any(self._path(symbol, other).is_file() for other in Timeframe):
                return History(candles=empty_candles())
            raise SymbolNotFound(symbol, f"No CSV market data for symbol {symbol!r}")
        tz = self.time_zone_for(symbol)
        calendar = self.calendar_for(symbol) if timeframe.is_intraday else None
        candles, actions = self._read(path, tz, timeframe, calendar)
        if self.split_adjusted:
            candles, actions = unadjust_splits(candles, actions, tz=tz)
        # Intraday files with a bar outside the sessions were refused above; a daily row on a holiday or a
        # weekend (an export that repeats the previous session) is left out and reported, as Yahoo's are.
        candles, off_session = self.sessions_only(symbol, timeframe, candles)
        window = slice_candles(candles, start, end)
        off = tuple(slice_candles(off_session, start, end).index.to_pydatetime())
        if timeframe is Timeframe.W1:
            return History(candles=window, off_session=off)
        return History(candles=window, actions=slice_actions(actions, start, end, tz=tz), off_session=off)

    def time_zone_for(self, symbol: str) -> ZoneInfo:
        return ZoneInfo(self.tz if isinstance(self.tz, str) else self.tz(symbol))

    def calendar_for(self, symbol: str) -> ExchangeCalendar | None:
        if self.calendar is None or isinstance(self.calendar, ExchangeCalendar):
            return self.calendar
        return self.calendar(symbol)

    def _path(self, symbol: str, timeframe: Timeframe) -> Path:
        """The file for (symbol, timeframe), refusing any name that would leave the directory."""
        if not symbol or any(char in symbol for char in ("/", "\\", "\x00")) or symbol.strip(".") == "":
            raise InvalidSymbol(f"Invalid symbol {symbol[:32]!r} for a file name")
        path = (self.directory / f"{symbol}_{timeframe.value}.csv").resolve()
        if path.parent != self.directory:
            raise InvalidSymbol(f"Invalid symbol {symbol[:32]!r} for a file name")
        return path

    def _read(
        self, path: Path, tz: ZoneInfo, timeframe: Timeframe, calendar: ExchangeCalendar | None = None
    ) -> tuple[pd.DataFrame, list[Action]]:
        """The file as a candle frame and its actions; anything unreadable is an UnreadableData naming the file
        and line."""
        try:
            # Text first, blank lines kept: a row's position then gives its line number (header = line 1).
            frame = pd.read_csv(path, dtype=str, skip_blank_lines=False)
        except pd.errors.EmptyDataError as error:
            raise UnreadableData("the file is empty", file=path.name) from error
        except pd.errors.ParserError as error:
            line = re.search(r"line (\d+)", str(error))
            raise UnreadableData(
                f"unreadable CSV ({error})", file=path.name, line=int(line.group(1)) if line else None
            ) from error
        except (OSError, ValueError) as error:
            raise UnreadableData(f"unreadable CSV ({error})", file=path.name) from error
        time_column = next((column for column in TIME_COLUMNS if column in frame.columns), None)
        if time_column is None:
            raise UnreadableData(
                f"the first column must be one of {', '.join(TIME_COLUMNS)}", file=path.name, line=1
            )
        frame = frame.dropna(how="all")
        if frame.empty:
            return empty_candles(), []
        for column in frame.columns:
            if column.strip().lower() in NUMBER_COLUMNS:
                numbers = pd.to_numeric(frame[column], errors="coerce")
                bad = numbers.isna() & frame[column].notna()
                if bad.any():
                    row = bad.idxmax()
                    raise UnreadableData(
                        f"{column} {frame.at[row, column]!r} is not a number", file=path.name, line=row + 2
                    )
                frame[column] = numbers
        try:
            rows = frame.index
            frame.index = self._timestamps(frame.pop(time_column), tz)
            _check_rows(frame, rows, timeframe, tz, calendar)
            return normalize_candles(frame), actions_from_columns(frame, tz=tz)
        except _BadRow as error:
            raise UnreadableData(error.message, file=path.name, line=error.row + 2) from error
        except ValueError as error:
            raise UnreadableData(str(error), file=path.name) from error

    @staticmethod
    def _timestamps(column: pd.Series, tz: ZoneInfo) -> pd.DatetimeIndex:
        text = column.astype(str).str.strip()
        with_offset = text.str.contains(_OFFSET_PATTERN, regex=True)
        if not (with_offset.all() or not with_offset.any()):
            row = (with_offset != with_offset.iloc[0]).idxmax()
            raise _BadRow(row, "timestamps mix values with and without a UTC offset")
        try:
            if with_offset.all():
                return pd.DatetimeIndex(pd.to_datetime(text, utc=True, format="ISO8601"))
            return pd.DatetimeIndex(pd.to_datetime(text, format="ISO8601")).tz_localize(tz)
        except (ValueError, TypeError) as error:
            for row, value in text.items():
                try:
                    pd.Timestamp(value)
                except ValueError:
                    raise _BadRow(row, f"{value!r} is not a timestamp") from error
            raise


def _check_rows(
    frame: pd.DataFrame,
    rows: pd.Index,
    timeframe: Timeframe,
    tz: ZoneInfo,
    calendar: ExchangeCalendar | None = None,
) -> None:
    """Refuse, naming the first offending row, what the file cannot mean: two rows for one bar (which one is the
    bar?), prices that no trade has (not positive, a low above the open or close, a high below them, a negative
    volume), daily or weekly bars not opening at midnight in the exchange's zone, and (with the exchange's
    `calendar`) intraday bars outside its sessions: a file written in another time zone, whose bars would be filed
    under the wrong day or hour."""
    stamps = frame.index
    repeated = stamps.duplicated(keep=False)
    if repeated.any():
        first = int(np.flatnonzero(repeated)[0])
        again = int(np.flatnonzero(stamps == stamps[first])[1])
        raise _BadRow(
            rows[again],
            f"{stamps[again].isoformat()} is listed twice (also on line {rows[first] + 2}): which bar is it?",
        )
    columns = {str(column).strip().lower(): column for column in frame.columns}
    present = [name for name in CANDLE_COLUMNS if name in columns]
    if len(present) == len(CANDLE_COLUMNS):
        candles = frame[[columns[name] for name in CANDLE_COLUMNS]].set_axis(list(CANDLE_COLUMNS), axis=1)
        priced = candles[list(PRICE_COLUMNS)].notna().all(axis=1).to_numpy()
        _, bad = validate_candles(candles[priced].fillna({"volume": 0}))
        if len(bad):
            row = rows[int(np.flatnonzero(priced)[candles[priced].index.get_loc(bad.index[0])])]
            values = ", ".join(f"{name} {bad.iloc[0][name]:g}" for name in CANDLE_COLUMNS)
            raise _BadRow(
                row,
                f"impossible bar ({values}): prices must be positive with low <= open, close <= high "
                "and volume >= 0",
            )
    if calendar is not None and len(stamps):
        outside = np.flatnonzero(~in_sessions(calendar, timeframe, stamps))
        if outside.size:
            local = stamps[int(outside[0])].tz_convert(calendar.tz)
            raise _BadRow(
                rows[int(outside[0])],
                f"a {timeframe.value} bar at {local.isoformat()} is outside the {calendar.exchange} sessions "
                f"({calendar.tz.key}): is the file in another time zone?",
            )
    if not timeframe.is_intraday:
        local = stamps.tz_convert(tz)
        off = np.flatnonzero(local != local.normalize())
        if off.size:
            raise _BadRow(
                rows[int(off[0])],
                f"a {timeframe.value} bar opens at the exchange's midnight ({tz.key}), not at "
                f"{local[int(off[0])].isoformat()}: is the file in another time zone?",
            )


class _BadRow(ValueError):
    """A value the file cannot hold, at a row position of the frame read from it."""

    def __init__(self, row: int, message: str):
        self.row = row
        self.message = message
        super().__init__(message)
