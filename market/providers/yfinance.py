"""Yahoo Finance through yfinance. The only module of the project that imports yfinance.

How yfinance's outcomes become our errors:
- Yahoo does not know the symbol (yfinance's timezone lookup finds nothing, or Yahoo answers 404) ->
  SymbolNotFound. Every symbol Yahoo has any history for has an exchange timezone, so this is the
  "no history at all" case.
- Yahoo's chart answer carries an explicit error for the window ("No data found, symbol may be
  delisted") -> SymbolNotFound; one about the intraday lookback -> LookbackExceeded.
- Yahoo knows the symbol but has no bars in the window (a chart without quotes, or only empty rows)
  -> an empty candle frame: a holiday or a window before the listing is not an error.
- HTTP 429 -> RateLimited; network errors, timeouts, 5xx and unreadable bodies -> ProviderUnavailable.
Both transient kinds are retried here with exponential backoff before they reach the caller.

Corporate actions: Yahoo's chart carries the window's splits and dividends (yfinance's `Dividends` and
`Stock Splits` columns with actions=True), and its prices, volumes and dividends are already adjusted for every
split up to today ("Close" is split-adjusted; "Adj Close" also for dividends). Candles are stored as traded, so
`fetch_history` multiplies the bars before each split back by its ratio (market.providers.base.unadjust_splits):
for splits after the window too, which a window ending in the past asks Yahoo for in one more daily request. Yahoo
divides the bars before an ex-date before that session opens, so while the exchange is closed a window ending now
takes the splits through the close of its next session as well (_splits_until).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import structlog
import yfinance as yf
from yfinance.data import YfData
from yfinance.exceptions import (
    YFDataException,
    YFInvalidPeriodError,
    YFPricesMissingError,
    YFRateLimitError,
    YFTzMissingError,
)

from market.adjust import Action
from market.calendar import ExchangeCalendar, bundled_nse_holidays
from market.providers.base import (
    DIVIDENDS_COLUMN,
    QUOTE_LOOKBACK,
    SPLITS_COLUMN,
    BatchHistory,
    History,
    LookbackExceeded,
    Provider,
    Quote,
    actions_from_columns,
    empty_candles,
    normalize_candles,
    require_aware,
    slice_candles,
    unadjust_splits,
)
from market.providers.errors import ProviderError, ProviderUnavailable, RateLimited, SymbolNotFound
from market.providers.patience import current_patience
from market.timeframes import Timeframe

if TYPE_CHECKING:
    from market.providers.ratelimit import Limiter

logger = structlog.get_logger(__name__)

# With no start, daily and weekly requests ask for everything since this (Yahoo's NSE history is younger).
HISTORY_FLOOR = datetime(1990, 1, 1, tzinfo=UTC)
# Yahoo measures its intraday lookback on its own clock: stay a little inside the limit.
_LOOKBACK_MARGIN = timedelta(minutes=5)
# A window ending less than this before now needs no request for the splits after it (unless its exchange is closed).
_LATER_SPLITS_MARGIN = timedelta(minutes=1)
# The request for the splits after a window starts this much before its end, so that it has bars to carry them.
_SPLITS_LOOKBEHIND = timedelta(days=7)


class SlidingWindowLimiter:
    """Thread-safe limit on how many calls start in any `window` seconds.

    The history of calls is shared; each caller passes its own limit, so providers configured alike
    share one budget.
    """

    def __init__(
        self,
        *,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._starts: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self, limit: int, *, max_wait: float | None = None) -> float:
        """Block until a call may start under `limit` calls per window; return the seconds waited.

        With `max_wait`, never block longer: raise RateLimited (with the seconds until a slot frees) as soon
        as the wait would exceed it, whether for the budget or for the callers queued ahead."""
        if limit < 1:
            raise ValueError("The limit must allow at least one call per window")
        # Waiting while holding the lock is deliberate: callers queue up instead of racing for the slot.
        if not self._lock.acquire(timeout=-1 if max_wait is None else max_wait):
            raise RateLimited(
                f"Yahoo Finance request budget busy for more than {max_wait:g} s",
                retry_after=self._retry_after(),
            )
        try:
            return self._wait_for_slot(limit, max_wait)
        finally:
            self._lock.release()

    def _wait_for_slot(self, limit: int, max_wait: float | None) -> float:
        waited = 0.0
        while True:
            now = self._clock()
            while self._starts and self._starts[0] <= now - self.window:
                self._starts.popleft()
            if len(self._starts) < limit:
                self._starts.append(now)
                return waited
            # The oldest call that must leave the window before this one fits (never a zero-length wait).
            delay = max(self._starts[-limit] + self.window - now, 1e-3)
            if max_wait is not None and waited + delay > max_wait:
                raise RateLimited(
                    f"Yahoo Finance request budget ({limit} a minute) used up; next slot in {delay:.0f} s",
                    retry_after=math.ceil(delay),
                )
            self._sleep(delay)
            waited += delay

    def _retry_after(self) -> int:
        return math.ceil(self.window)


# One budget for every YFinanceProvider in the process: Yahoo limits us per client, not per instance. With Redis,
# market.sources shares the budget across processes (market.providers.ratelimit) and falls back to this one.
process_limiter = SlidingWindowLimiter()

_configure_lock = threading.Lock()
_configured_cache_dir: Path | None = None


def _configure_yfinance(cache_dir: Path) -> None:
    """Process-wide yfinance setup, done once: its cache location and exceptions instead of logged errors."""
    global _configured_cache_dir
    with _configure_lock:
        if _configured_cache_dir is None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            yf.set_tz_cache_location(str(cache_dir))
            # Replaces history(raise_errors=True), which yfinance 1.x deprecates.
            yf.config.debug.hide_exceptions = False
            _configured_cache_dir = cache_dir
        elif _configured_cache_dir != cache_dir:
            logger.warning(
                "yfinance_cache_dir_ignored", requested=str(cache_dir), active=str(_configured_cache_dir)
            )


def _forget_cached_responses() -> None:
    """Drop yfinance's in-process response cache.

    yfinance memoises responses of past windows and timezone lookups (error pages included), so a
    retry after a 5xx would otherwise be answered from memory with the same failure.
    """
    YfData.cache_get.cache_clear()


class YFinanceProvider(Provider):
    """Candles and quotes from Yahoo Finance, rate limited, retried and normalised to the candle frame."""

    name = "yfinance"

    def __init__(
        self,
        *,
        session: Any = None,
        timeout: float = 10,
        auto_adjust: bool = False,
        cache_dir: str | Path,
        max_requests_per_minute: int = 60,
        retries: int = 2,
        backoff: float = 1.0,
        calendar: ExchangeCalendar | Callable[[str], ExchangeCalendar] | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        limiter: Limiter | None = None,
        max_wait: float | None = None,
    ):
        """`session` (a requests or curl_cffi Session) replaces yfinance's process-wide session: yfinance
        keeps one session for all tickers, so every provider in a process should pass the same one.
        `max_wait`: the longest a call waits for the request budget (None: as long as it takes) unless the
        context says otherwise (market.providers.patience, set for Celery tasks)."""
        if max_requests_per_minute < 1:
            raise ValueError("max_requests_per_minute must be at least 1")
        if retries < 0 or backoff < 0:
            raise ValueError("retries and backoff cannot be negative")
        _configure_yfinance(Path(cache_dir))
        self.session = session
        self.timeout = timeout
        self.auto_adjust = auto_adjust
        self.max_requests_per_minute = max_requests_per_minute
        self.retries = retries
        self.backoff = backoff
        self.calendar = calendar or ExchangeCalendar(bundled_nse_holidays())
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sleep = sleep
        self.limiter = limiter or process_limiter
        self.max_wait = max_wait

    def fetch_candles(
        self,
        symbol: str,
        timeframe: Timeframe,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        """Candles opening in [start, end), as traded (see fetch_history)."""
        return self.fetch_history(symbol, timeframe, start=start, end=end).candles

    def fetch_history(
        self,
        symbol: str,
        timeframe: Timeframe,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> History:
        """Candles opening in [start, end), as traded, and the splits and dividends of the window (daily and
        intraday requests; a weekly bar does not say which day of its week an action was on). No start: as far
        back as Yahoo serves the timeframe.

        Intraday requests beyond Yahoo's lookback raise LookbackExceeded before any request is sent;
        1m windows go out in chunks of at most 7 days. The last bar may still be forming while the
        market is open; fetching it again later returns its final values.
        """
        spec = timeframe.spec
        start, end = self._window(timeframe, start, end)
        if start >= end:
            return History(candles=empty_candles())

        try:
            chunks = _chunks(start, end, spec.max_per_request)
            reach = self._reach(timeframe, [self._splits_until(symbol, end)], end)
            chunks[-1] = (chunks[-1][0], reach)
            frames = [
                self._fetch_window(symbol, timeframe, chunk_start, chunk_end)
                for chunk_start, chunk_end in chunks
            ]
            frames = [frame for frame in frames if not frame.empty]
            if not frames:
                return History(candles=empty_candles())
            return self._history_from(symbol, timeframe, pd.concat(frames), start=start, end=end, reach=reach)
        except (ProviderError, LookbackExceeded):
            raise
        except Exception as error:  # whatever else yfinance's answer does to us is still the provider failing
            raise ProviderError(f"yfinance failed for {symbol!r}: {type(error).__name__}: {error}") from error

    def _history_from(
        self,
        symbol: str,
        timeframe: Timeframe,
        raw: pd.DataFrame,
        *,
        start: datetime,
        end: datetime,
        reach: datetime | None = None,
    ) -> History:
        """One symbol's Yahoo rows of [start, end) (with its Dividends and Stock Splits columns) as traded
        candles in its sessions and the window's corporate actions. `reach`: the end of the request when it went
        past `end` (see _reach): its rows after `end` are only the splits Yahoo has applied already."""
        tz = self.time_zone_for(symbol)
        actions = [] if self.auto_adjust else actions_from_columns(raw, tz=tz)
        # Yahoo sends rows outside the exchange's sessions: intraday bars around the session, and daily rows for
        # a holiday or weekend (the previous session repeated, or no volume). Neither is a traded bar.
        candles, off_session = self.sessions_only(symbol, timeframe, normalize_candles(raw))
        candles = slice_candles(candles, start, end)
        off = tuple(slice_candles(off_session, start, end).index.to_pydatetime())
        if self.auto_adjust:  # Yahoo's fully adjusted prices, stored as such: no actions to apply on top
            return History(candles=candles, off_session=off)
        until = self._splits_until(symbol, end)
        if reach is not None and reach > end:
            # The answer went past the window: what is after `end` is not the window's, but its splits up to
            # `until` are in the window's prices.
            after = [
                action
                for action in actions
                if datetime.combine(action.ex_date, datetime.min.time(), tz) >= end
            ]
            actions = [action for action in actions if action not in after]
            later = [
                action
                for action in after
                if action.kind == "split"
                and until is not None
                and action.ex_date <= until.astimezone(tz).date()
            ]
        else:
            later = self._splits_after(symbol, end, until, tz, known=actions) if until is not None else []
        candles, actions = unadjust_splits(candles, actions, tz=tz, later_splits=later)
        if timeframe is Timeframe.W1:
            actions = []  # dated by their week's bar, not their day: the daily sync reports them
        return History(candles=candles, actions=actions, off_session=off)

    def _splits_until(self, symbol: str, end: datetime) -> datetime | None:
        """Until when Yahoo's prices of a window ending at `end` may already be adjusted for a later split: now;
        and while the symbol's exchange is closed, the close of its next session, as Yahoo divides the bars before
        an ex-date before that session opens (a window ending at 08:00 IST on the ex-date gets yesterday's bar
        halved, with the split itself dated after the window). None when that is no later than `end`."""
        now = self._now()
        calendar = self._calendar_for(symbol)
        next_close = calendar.next_close(now)
        until = max(now, next_close.astimezone(UTC)) if calendar.next_open(now) < next_close else now
        return until if until - end > _LATER_SPLITS_MARGIN else None

    def _reach(self, timeframe: Timeframe, untils: list[datetime | None], end: datetime) -> datetime:
        """Where the last request of a window ending at `end` stops: a daily window ending now goes on to the
        latest `until` of its symbols (see _splits_until), so that one request also brings the splits Yahoo has
        applied already (yfinance keeps a daily answer's splits after its last bar; an intraday one drops them,
        and a weekly one refuses them, so those ask in a request of their own, _splits_after)."""
        if timeframe is not Timeframe.D1 or self.auto_adjust or self._now() - end > _LATER_SPLITS_MARGIN:
            return end
        return max([end, *(until for until in untils if until is not None)])

    def _splits_after(
        self, symbol: str, end: datetime, until: datetime, tz, *, known: list[Action]
    ) -> list[Action]:
        """The splits from `end` to `until`, which Yahoo has already applied to the window's prices, without those
        the window reported (`known`). Asked from a week before `end`: Yahoo sends a window's events only with
        its bars, and before the ex-date's session there is none after `end`."""
        try:
            frame = self._fetch_window(symbol, Timeframe.D1, end - _SPLITS_LOOKBEHIND, until)
        except (SymbolNotFound, LookbackExceeded):
            return []
        reported = {action.ex_date for action in known if action.kind == "split"}
        first = end.astimezone(tz).date()
        return [
            action
            for action in actions_from_columns(frame, tz=tz)
            if action.kind == "split" and action.ex_date >= first and action.ex_date not in reported
        ]

    def time_zone_for(self, symbol: str):
        return self._calendar_for(symbol).tz

    def calendar_for(self, symbol: str) -> ExchangeCalendar:
        return self._calendar_for(symbol)

    def exchange_for(self, symbol: str) -> str:
        return self._calendar_for(symbol).exchange

    def _window(
        self, timeframe: Timeframe, start: datetime | None, end: datetime | None
    ) -> tuple[datetime, datetime]:
        """The [start, end) Yahoo is asked for: capped at now, defaulted and checked against its lookback."""
        now = self._now()
        spec = timeframe.spec
        end = min(require_aware(end, "end"), now) if end is not None else now
        earliest = now - spec.max_lookback if spec.max_lookback is not None else None
        if start is None:
            start = earliest if earliest is not None else HISTORY_FLOOR
        require_aware(start, "start")
        if earliest is not None:
            if start < earliest:
                raise LookbackExceeded(
                    f"{timeframe.value} candles are available for the last {spec.max_lookback.days} days only"
                )
            start = max(start, earliest + _LOOKBACK_MARGIN)
        return start, end

    def _now(self) -> datetime:
        return require_aware(self._clock(), "clock()")

    def fetch_history_batch(
        self,
        symbols: list[str],
        timeframe: Timeframe,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> BatchHistory:
        """Candles and corporate actions of many symbols from multi-ticker `yf.download` requests (one per
        window chunk, as in fetch_history; each symbol's rows then go through the same un-adjusting). yfinance
        sends one chart request per ticker, so each symbol takes a slot of the rate limit. yfinance logs and
        skips a ticker that fails, which looks the same as a window without bars: the symbols that come back
        empty, from the whole window or from any chunk in which other tickers had bars (a 1m window's week
        whose request alone failed), are asked again one by one through fetch_history, which tells an unknown
        symbol (SymbolNotFound) from an outage (retried, then ProviderUnavailable) from a genuinely empty
        window. Never a history with a hole where a request failed: the caller records the window as fetched."""
        symbols = list(dict.fromkeys(symbols))
        window_start, window_end = self._window(timeframe, start, end)
        if not symbols or window_start >= window_end:
            return BatchHistory(
                histories={symbol: History(candles=empty_candles()) for symbol in symbols}, errors={}
            )
        parts: dict[str, list[pd.DataFrame]] = {symbol: [] for symbol in symbols}
        holes: set[str] = set()  # symbols without bars in a chunk where other tickers had some
        chunks = _chunks(window_start, window_end, timeframe.spec.max_per_request)
        reach = self._reach(
            timeframe, [self._splits_until(symbol, window_end) for symbol in symbols], window_end
        )
        chunks[-1] = (chunks[-1][0], reach)
        try:
            for chunk_start, chunk_end in chunks:
                frame = self._download(symbols, timeframe, chunk_start, chunk_end)
                chunk = {symbol: _ticker_frame(frame, symbol) for symbol in symbols}
                traded = any(part is not None and not part.empty for part in chunk.values())
                for symbol, part in chunk.items():
                    if part is not None and not part.empty:
                        parts[symbol].append(part)
                    elif traded:
                        holes.add(symbol)
        except ProviderError as error:
            return BatchHistory(histories={}, errors=dict.fromkeys(symbols, error))
        histories: dict[str, History] = {}
        errors: dict[str, ProviderError] = {}
        for symbol, frames in parts.items():
            if not frames or symbol in holes:
                continue  # asked again alone below: its request may have failed where the others' did not
            try:
                history = self._history_from(
                    symbol, timeframe, pd.concat(frames), start=window_start, end=window_end, reach=reach
                )
            except ValueError as error:
                logger.warning("yfinance_batch_unreadable", symbol=symbol, error=str(error))
                continue  # asked again alone below
            except ProviderError as error:  # the extra request for later splits failed
                errors[symbol] = error
                continue
            if not history.candles.empty:
                histories[symbol] = history
        retry_alone = [symbol for symbol in symbols if symbol not in histories and symbol not in errors]
        if retry_alone:
            logger.info("yfinance_batch_fetch_alone", count=len(retry_alone), symbols=retry_alone[:20])
            if holes:
                _forget_cached_responses()  # else a failed request's error page answers its retry from memory
            alone = super().fetch_history_batch(retry_alone, timeframe, start=start, end=end)
            histories.update(alone.histories)
            errors.update(alone.errors)
        return BatchHistory(histories=histories, errors=errors)

    def _calendar_for(self, symbol: str) -> ExchangeCalendar:
        return self.calendar if isinstance(self.calendar, ExchangeCalendar) else self.calendar(symbol)

    def _download(
        self, symbols: list[str], timeframe: Timeframe, start: datetime, end: datetime
    ) -> pd.DataFrame | None:
        """One multi-ticker download of [start, end), after taking one rate-limit slot per ticker."""
        patience = current_patience()
        for _ in symbols:
            self.limiter.acquire(
                self.max_requests_per_minute, max_wait=self.max_wait if patience is None else patience
            )
        try:
            return yf.download(
                tickers=list(symbols),
                start=start,
                end=end,
                interval=timeframe.spec.yf_interval,
                group_by="ticker",
                auto_adjust=self.auto_adjust,
                actions=True,  # Dividends and Stock Splits: see _history_from
                threads=False,
                progress=False,
                timeout=self.timeout,
                session=self.session,
                ignore_tz=False,
                prepost=False,
                repair=False,
                keepna=False,
                multi_level_index=True,
            )
        except Exception as error:  # yfinance and its HTTP backends raise many types; each one is mapped
            raise _translate(",".join(symbols), error) from error

    def fetch_quotes(self, symbols: list[str]) -> dict[str, Quote]:
        """Quotes of many symbols from one multi-ticker `yf.download` of recent daily bars. yfinance sends one
        chart request per ticker, so the batch takes that many slots of the rate limit. yfinance logs and skips
        the tickers that fail; they are left out of the answer (the caller reports them as missing). Each symbol's
        bars are read as fetch_quote reads them (as traded, the splits Yahoo has applied already taken back, a
        split on the last day applied to the previous close), so the two agree: on an ex-date before the open
        Yahoo's closes are already divided by the split, and the batch answered half of the last traded price."""
        if not symbols:
            return {}
        for _ in symbols:
            self.limiter.acquire(self.max_requests_per_minute)
        now = self._now()
        start = now - QUOTE_LOOKBACK
        reach = self._reach(Timeframe.D1, [self._splits_until(symbol, now) for symbol in symbols], now)
        try:
            frame = yf.download(
                tickers=list(symbols),
                start=start,
                end=reach,
                interval="1d",
                group_by="ticker",
                auto_adjust=self.auto_adjust,
                actions=True,
                threads=False,
                progress=False,
                timeout=self.timeout,
                session=self.session,
                ignore_tz=False,
                multi_level_index=True,
            )
        except Exception as error:  # yfinance and its HTTP backends raise many types; each one is mapped
            raise _translate(",".join(symbols), error) from error
        quotes: dict[str, Quote] = {}
        for symbol in symbols:
            raw = _ticker_frame(frame, symbol)
            if raw is None or raw.empty:
                continue
            try:
                history = self._history_from(symbol, Timeframe.D1, raw, start=start, end=now, reach=reach)
            except ValueError as error:
                logger.warning("yfinance_quote_unreadable", symbol=symbol, error=str(error))
                continue
            if not history.candles.empty:
                quotes[symbol] = self.quote_from_candles(symbol, history.candles, actions=history.actions)
        return quotes

    def _fetch_window(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> pd.DataFrame:
        """One chart request, retried on transient failures."""
        for attempt in range(self.retries + 1):
            patience = current_patience()
            self.limiter.acquire(
                self.max_requests_per_minute, max_wait=self.max_wait if patience is None else patience
            )
            try:
                return self._history(symbol, timeframe, start, end)
            except ProviderUnavailable as error:
                if attempt == self.retries:
                    raise
                delay = self.backoff * 2**attempt
                logger.warning(
                    "yfinance_retry",
                    symbol=symbol,
                    timeframe=timeframe.value,
                    attempt=attempt + 1,
                    delay=delay,
                    error=str(error),
                )
                _forget_cached_responses()
                self._sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _history(self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime) -> pd.DataFrame:
        ticker = yf.Ticker(symbol, session=self.session)
        try:
            return ticker.history(
                interval=timeframe.spec.yf_interval,
                start=start,
                end=end,
                auto_adjust=self.auto_adjust,
                actions=True,
                prepost=False,
                repair=False,
                keepna=False,
                timeout=self.timeout,
            )
        except YFPricesMissingError as error:
            return _no_prices(symbol, ticker, error)
        except Exception as error:  # yfinance and its HTTP backends raise many types; each one is mapped
            raise _translate(symbol, error) from error


def _ticker_frame(frame: pd.DataFrame | None, symbol: str) -> pd.DataFrame | None:
    """One ticker's columns of a `group_by="ticker"` download (yfinance upper-cases tickers), without the rows
    that exist only because other tickers traded then; None when the ticker is not in it."""
    if frame is None or frame.empty or not isinstance(frame.columns, pd.MultiIndex):
        return None
    key = symbol.upper()
    if key not in set(frame.columns.get_level_values(0)):
        return None
    part = frame[key]
    prices = [column for column in ("Open", "High", "Low", "Close") if column in part.columns]
    traded = part[prices].notna().any(axis=1) if prices else part.notna().any(axis=1)
    # A split after the last bar (an ex-date not yet traded: see _reach) comes as a row without prices.
    events = [column for column in (DIVIDENDS_COLUMN, SPLITS_COLUMN) if column in part.columns]
    if events:
        traded |= (part[events].fillna(0) != 0).any(axis=1)
    return part[traded]


def _no_prices(symbol: str, ticker: yf.Ticker, error: YFPricesMissingError) -> pd.DataFrame:
    """Decide what Yahoo's "no prices" means, once the symbol's timezone lookup has succeeded."""
    reason = error.yahoo_reason
    if reason is not None:
        if "within the last" in reason:
            raise LookbackExceeded(f"Yahoo Finance refused the window: {reason}") from error
        raise SymbolNotFound(symbol, f"Yahoo Finance has no data for {symbol!r}: {reason}") from error
    if "exchangeTimezoneName" not in ticker.get_history_metadata():
        raise ProviderUnavailable("Yahoo Finance answered without a chart") from error
    return empty_candles()


def _translate(symbol: str, error: Exception) -> ProviderError:
    """Our typed error for an exception raised inside yfinance."""
    if isinstance(error, YFRateLimitError):
        return RateLimited("Yahoo Finance rate limit reached")
    if isinstance(error, YFTzMissingError):
        return SymbolNotFound(symbol, f"Yahoo Finance does not know symbol {symbol!r}")
    if isinstance(error, YFInvalidPeriodError):
        return ProviderError(f"Yahoo Finance rejected the request: {error}")
    status = getattr(getattr(error, "response", None), "status_code", None)
    if isinstance(status, int):
        if status == 404:
            return SymbolNotFound(symbol, f"Yahoo Finance does not know symbol {symbol!r}")
        if status == 429:
            return RateLimited("Yahoo Finance rate limit reached")
        if status >= 500:
            return ProviderUnavailable(f"Yahoo Finance failed with HTTP {status}")
        return ProviderError(f"Yahoo Finance answered HTTP {status} for {symbol!r}")
    if isinstance(error, json.JSONDecodeError | YFDataException):
        return ProviderUnavailable(f"Yahoo Finance sent an unreadable response: {error}")
    if isinstance(error, OSError):  # requests' and curl_cffi's network errors and timeouts are OSErrors
        return ProviderUnavailable(f"Yahoo Finance is unreachable: {type(error).__name__}: {error}")
    return ProviderError(f"yfinance failed for {symbol!r}: {type(error).__name__}: {error}")


def _chunks(start: datetime, end: datetime, size: timedelta | None) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive windows of at most `size` (one window when size is None)."""
    if size is None:
        return [(start, end)]
    windows = []
    while start < end:
        windows.append((start, min(start + size, end)))
        start += size
    return windows
