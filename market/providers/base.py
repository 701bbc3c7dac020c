"""The provider interface and the candle frame every provider returns.

Candle frame: a DataFrame indexed by a UTC-aware DatetimeIndex named "timestamp" holding each bar's
OPEN time (daily and weekly bars open at exchange-local midnight, 18:30 UTC the day before for IST),
sorted ascending with unique timestamps (microsecond resolution, like Python's datetime); columns
exactly open, high, low, close (float64) and volume (int64). Prices are as traded (not adjusted for
later splits or dividends). Only bars that open in a session of the symbol's exchange calendar, when the provider
has one (`Provider.sessions_only`): a row Yahoo sends for a holiday or a weekend (often the previous session
repeated, or no volume) is no traded bar, and is reported in `History.off_session` instead.

History: what one fetch returns, the candle frame and the corporate actions (market.adjust.Action: splits,
bonuses as splits, dividends) whose ex-date falls in the fetched window, with amounts as traded.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING

import numpy as np
import structlog

from market.adjust import Action, day_factors, split_ratio_between
from market.bars import in_sessions
from market.providers.errors import ProviderError, ProviderUnavailable, SymbolNotFound
from market.symbols import currency_for_symbol, exchange_for_symbol
from market.timeframes import STORED_TIMEFRAMES, Timeframe

if TYPE_CHECKING:
    import pandas as pd

    from market.calendar import ExchangeCalendar

logger = structlog.get_logger(__name__)

PRICE_COLUMNS = ("open", "high", "low", "close")
CANDLE_COLUMNS = (*PRICE_COLUMNS, "volume")
INDEX_NAME = "timestamp"
INDEX_UNIT = "us"
# Columns of yfinance's history(actions=True) (and of its to_csv files) that carry corporate actions.
DIVIDENDS_COLUMN = "Dividends"
SPLITS_COLUMN = "Stock Splits"

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


@dataclass(frozen=True)
class History:
    """What a fetch returns: candles as traded, and the corporate actions with an ex-date in the window.
    `off_session`: the open times (UTC) of rows the provider sent for the window that are not in a session of
    the exchange's calendar (a holiday, a weekend): left out of `candles`, for the caller to count and report."""

    candles: pd.DataFrame
    actions: list[Action] = field(default_factory=list)
    off_session: tuple[datetime, ...] = ()


def empty_candles() -> pd.DataFrame:
    """A candle frame with no rows (but the right columns, dtypes and index)."""
    import pandas as pd

    index = pd.DatetimeIndex([], tz=UTC, name=INDEX_NAME).as_unit(INDEX_UNIT)
    frame = pd.DataFrame({column: pd.Series(dtype="float64", index=index) for column in PRICE_COLUMNS})
    frame["volume"] = pd.Series(dtype="int64", index=index)
    return frame


def normalize_candles(frame: pd.DataFrame) -> pd.DataFrame:
    """Bring an OHLCV frame with an aware index (any column case, extra columns) to the candle convention.

    Rows with a missing price are dropped, a missing volume counts as 0, and a repeated timestamp keeps
    its last row (the most recent version of that bar).
    """
    import pandas as pd

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
    import pandas as pd

    mask = np.ones(len(candles), dtype=bool)
    if start is not None:
        mask &= candles.index >= pd.Timestamp(require_aware(start, "start"))
    if end is not None:
        mask &= candles.index < pd.Timestamp(require_aware(end, "end"))
    return candles[mask]


def actions_from_columns(frame: pd.DataFrame, *, tz) -> list[Action]:
    """The actions in yfinance's `Dividends` and `Stock Splits` columns (any case; 0 or blank: none) of a frame
    with an aware index, dated by the exchange-local day (`tz`) of their row. A split value is new shares per
    old share (2.0 for 2:1; yfinance reports a 1:1 bonus issue as a 2:1 split)."""
    import pandas as pd

    columns = {str(column).strip().lower(): column for column in frame.columns}
    actions: list[Action] = []
    if frame.empty:
        return actions
    days = frame.index.tz_convert(tz).date
    for name, kind, key in (
        (SPLITS_COLUMN, "split", "ratio"),
        (DIVIDENDS_COLUMN, "dividend", "amount"),
    ):
        column = columns.get(name.lower())
        if column is None:
            continue
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")
        for day, value in zip(days, values, strict=True):
            if np.isfinite(value) and value > 0 and not (kind == "split" and value == 1):
                actions.append(Action(ex_date=day, kind=kind, **{key: float(value)}))
    # One action per day and kind (a repeated bar keeps its last row, like the candles).
    unique = {(action.ex_date, action.kind): action for action in actions}
    return sorted(unique.values(), key=lambda action: (action.ex_date, action.kind))


def slice_actions(actions: list[Action], start: datetime | None, end: datetime | None, *, tz) -> list[Action]:
    """Actions whose ex-date's session lies in [start, end): from start's local day, before end."""
    first = start.astimezone(tz).date() if start is not None else None
    return [
        action
        for action in actions
        if (first is None or action.ex_date >= first)
        and (end is None or datetime.combine(action.ex_date, time(), tz) < end)
    ]


def unadjust_splits(
    candles: pd.DataFrame, actions: list[Action], *, tz, later_splits: list[Action] = ()
) -> tuple[pd.DataFrame, list[Action]]:
    """Candles and actions as traded from split-adjusted ones (Yahoo adjusts every bar, and every dividend, for
    the splits after it): bars before a split's ex-date are multiplied back by its ratio (volume divided), and
    dividends too. `later_splits`: splits after the window, which the data is adjusted for as well."""
    splits = [a for a in (*actions, *later_splits) if a.kind in ("split", "bonus") and a.ratio]
    if not splits:
        return candles, list(actions)
    if not candles.empty:
        days = np.array(candles.index.tz_convert(tz).date)
        prices, volumes = day_factors(days, candles["close"].to_numpy(), splits, mode="splits")
        candles = candles.copy()
        for column in PRICE_COLUMNS:
            candles[column] = candles[column].to_numpy() / prices
        candles["volume"] = np.rint(candles["volume"].to_numpy() / volumes).astype("int64")
    far = max(a.ex_date for a in splits)
    as_traded = [
        Action(
            ex_date=a.ex_date,
            kind=a.kind,
            amount=a.amount * split_ratio_between(splits, after=a.ex_date, through=far),
        )
        if a.kind == "dividend" and a.amount
        else a
        for a in actions
    ]
    return candles, as_traded


def require_aware(value: datetime, name: str) -> datetime:
    """Reject naive datetimes: every time in this project carries its zone."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value


@dataclass(frozen=True, kw_only=True)
class BatchHistory:
    """What one batch fetch got: per symbol, exactly what `fetch_history` returns for it (candles and corporate
    actions), or the provider error that symbol ended with. Every requested symbol is in one of the two."""

    histories: dict[str, History]
    errors: dict[str, ProviderError]


class Provider(ABC):
    """A source of candles and quotes; implementations raise only market.providers.errors (and ValueError
    subclasses such as LookbackExceeded for requests they cannot serve).

    `fetch_history` is what syncs call: candles plus the corporate actions of the window. A provider that knows
    no actions implements `fetch_candles` only (the default `fetch_history` reports none); one that knows them
    overrides `fetch_history` and answers `fetch_candles` from it."""

    name: str
    # The timeframes this provider serves (within each one's max_lookback); reads build the others from finer
    # stored bars (market.timeframes.BUILT_FROM).
    timeframes: frozenset[Timeframe] = frozenset(STORED_TIMEFRAMES)

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

    def fetch_history(
        self,
        symbol: str,
        timeframe: Timeframe,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> History:
        """Candles of `symbol` opening in [start, end) and the corporate actions with an ex-date in that window
        (this default: none known)."""
        return History(candles=self.fetch_candles(symbol, timeframe, start=start, end=end))

    def fetch_history_batch(
        self,
        symbols: list[str],
        timeframe: Timeframe,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> BatchHistory:
        """Candles and corporate actions of many symbols over one window (providers with a multi-symbol request
        override this).

        One symbol's error never fails the others; an outage (ProviderUnavailable, RateLimited) stops the batch
        and is the error of every symbol not fetched yet, so a caller retries them later instead of hammering
        a provider that is down."""
        histories: dict[str, History] = {}
        errors: dict[str, ProviderError] = {}
        for position, symbol in enumerate(symbols):
            try:
                histories[symbol] = self.fetch_history(symbol, timeframe, start=start, end=end)
            except ProviderUnavailable as error:
                errors.update(dict.fromkeys(symbols[position:], error))
                break
            except ProviderError as error:
                errors[symbol] = error
        return BatchHistory(histories=histories, errors=errors)

    def fetch_quote(self, symbol: str) -> Quote:
        """The last daily close against the one before it, from the recent daily candles. A split or bonus on
        the last day is applied to the previous close (as exchanges quote it), so it is no change of price."""
        now = self._now()
        history = self.fetch_history(symbol, Timeframe.D1, start=now - QUOTE_LOOKBACK, end=now)
        return self.quote_from_candles(symbol, history.candles, actions=history.actions)

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

    def quote_from_candles(self, symbol: str, candles: pd.DataFrame, *, actions: list[Action] = ()) -> Quote:
        """The quote of the last daily candle against the close before it (divided by the ratios of `actions`'
        splits between the two days). Rows on days that are not sessions of the exchange are left out: a holiday's
        row (the previous close again) would be quoted as that day's session, with no change."""
        candles, off_session = self.sessions_only(symbol, Timeframe.D1, candles)
        if len(off_session):
            logger.warning(
                "quote_off_session_rows",
                symbol=symbol,
                source=self.name,
                days=[
                    stamp.date().isoformat()
                    for stamp in off_session.index.tz_convert(self.time_zone_for(symbol))
                ],
            )
        if candles.empty:
            raise SymbolNotFound(symbol, f"No recent daily candles for symbol {symbol!r}")
        last = candles.iloc[-1]
        previous_close = float(candles["close"].iloc[-2]) if len(candles) > 1 else None
        if previous_close is not None and actions:
            previous_day, last_day = candles.index[-2:].tz_convert(self.time_zone_for(symbol)).date
            previous_close /= split_ratio_between(list(actions), after=previous_day, through=last_day)
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

    def calendar_for(self, symbol: str) -> ExchangeCalendar | None:
        """The calendar of `symbol`'s exchange that the provider's bars are checked against (providers given one
        return it; this default: none, so nothing is checked)."""
        return None

    def sessions_only(
        self, symbol: str, timeframe: Timeframe, candles: pd.DataFrame
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(bars opening in a session of the symbol's exchange calendar, the others): what every provider stores
        and quotes, and what it reports in History.off_session. Special sessions the calendar holds are sessions;
        a weekday of a year whose holidays are not loaded counts as one (market.calendar), so no real bar is left
        out for want of a holiday list. Without a calendar every bar is kept."""
        calendar = self.calendar_for(symbol)
        if calendar is None or candles.empty:
            return candles, candles.iloc[:0]
        inside = in_sessions(calendar, timeframe, candles.index)
        return candles[inside], candles[~inside]

    def time_zone_for(self, symbol: str) -> tzinfo:
        """Zone of `symbol`'s exchange, in which its bars and actions are dated (providers that report actions
        override this)."""
        return UTC

    def currency_for(self, symbol: str) -> str:
        """Quote currency of `symbol`: its exchange's (INR on NSE and BSE, USD in New York, pence in London)."""
        return currency_for_symbol(symbol, self.exchange_for(symbol))

    def exchange_for(self, symbol: str) -> str:
        """The exchange `symbol` trades on: what its suffix implies (providers given a calendar ask it instead)."""
        return exchange_for_symbol(symbol)

    def _now(self) -> datetime:
        """Current time; providers with an injectable clock override this."""
        return datetime.now(UTC)
