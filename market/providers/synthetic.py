"""Deterministic made-up market data, for development, demos and tests without Yahoo.

Every number comes from seeds derived from (seed, symbol, year) or (seed, symbol, day), never from the
request, so the same bar always has the same values and any sub-range equals the slice of a larger one.
The daily path starts at a fixed anchor date: a geometric random walk with quarterly drift and
volatility regimes, pulled back to the symbol's own price level (100-4000, indices higher) by
subtracting its long moving average. Intraday bars are minute bridges from the day's open to its close,
kept within the day's range and aggregated to the bar size; their volume is U-shaped over the session.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from market.calendar import ExchangeCalendar
from market.providers.base import (
    INDEX_NAME,
    INDEX_UNIT,
    BatchHistory,
    History,
    LookbackExceeded,
    Provider,
    Quote,
    empty_candles,
    require_aware,
    slice_candles,
)
from market.providers.errors import SymbolNotFound
from market.timeframes import Timeframe

if TYPE_CHECKING:
    import pandas as pd

ANCHOR = date(2000, 1, 3)  # first day of every daily path; a Monday
TICK = 0.05  # NSE equity tick size
_DAYS_PER_YEAR = 366  # draws per calendar year, indexed by day of year
_TREND_WINDOW = 500  # trading days in the moving average the path is pulled towards
_INTRADAY_SIGMA_SHARE = 0.6  # how much of the daily volatility the intraday wiggle carries
# Usual orders of magnitude of the demo catalogue (INR), so synthetic charts look plausible side by side: SENSEX
# above NIFTY 50, each stock near its usual level. Still synthetic data, recorded as such. Others: a seeded level.
_TYPICAL_LEVELS = {
    "^NSEI": 24_000.0,
    "^BSESN": 80_000.0,
    "RELIANCE.NS": 1_400.0,
    "TCS.NS": 3_500.0,
    "INFY.NS": 1_600.0,
    "HDFCBANK.NS": 1_800.0,
    "ICICIBANK.NS": 1_300.0,
    "SBIN.NS": 800.0,
    "BHARTIARTL.NS": 1_800.0,
}


def _seed(*parts: object) -> int:
    """A seed that is stable across processes and Python versions (unlike hash())."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _unit(*parts: object) -> float:
    """A stable number in [0, 1) from the parts."""
    return _seed(*parts) / 2**64


def _to_tick(prices: np.ndarray) -> np.ndarray:
    """Round to the exchange tick; monotonic, so it keeps low <= open/close <= high."""
    return np.round(np.maximum(np.round(prices / TICK) * TICK, TICK), 2)


class SyntheticProvider(Provider):
    """Candles for a known set of symbols, on the calendar's trading days and session hours only. Its series have
    no corporate actions, so it reports none (the default `fetch_history`)."""

    name = "synthetic"

    def __init__(
        self,
        *,
        symbols: Callable[[], Collection[str]] | Collection[str],
        calendar: ExchangeCalendar | Callable[[str], ExchangeCalendar],
        seed: int = 0,
        history_days: int = 3650,
        clock: Callable[[], datetime] | None = None,
    ):
        """`symbols` may be a callable (e.g. reading the instrument table) so the set can change at run time;
        `calendar` one calendar for every symbol, or a callable giving each symbol its exchange's calendar."""
        if history_days < 1:
            raise ValueError("history_days must be at least 1")
        self._symbols = symbols if callable(symbols) else (lambda: symbols)
        self.calendar = calendar
        self.seed = seed
        self.history_days = history_days
        self._clock = clock or (lambda: datetime.now(UTC))

    def fetch_candles(
        self,
        symbol: str,
        timeframe: Timeframe,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        """Closed bars opening in [start, end), within the last `history_days` and Yahoo's intraday lookback."""
        if symbol not in self._symbols():
            raise SymbolNotFound(symbol)
        return self._known_candles(symbol, timeframe, start=start, end=end)

    def fetch_history_batch(
        self,
        symbols: list[str],
        timeframe: Timeframe,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> BatchHistory:
        """Like fetch_history per symbol (no corporate actions), reading the set of known symbols (a catalogue query when it is the
        instrument table) once per batch rather than once per symbol."""
        known = self._symbols()
        histories, errors = {}, {}
        for symbol in symbols:
            if symbol in known:
                histories[symbol] = History(
                    candles=self._known_candles(symbol, timeframe, start=start, end=end)
                )
            else:
                errors[symbol] = SymbolNotFound(symbol)
        return BatchHistory(histories=histories, errors=errors)

    def fetch_quote(self, symbol: str) -> Quote:
        """While a session is open, today's bar so far (from its closed minute bars) against the last close, as
        Yahoo quotes a forming day, so the quote moves with the intraday bars rather than repeating yesterday's
        close until today's bar closes; otherwise the last daily close against the one before it."""
        quote = super().fetch_quote(symbol)
        calendar = self._calendar_for(symbol)
        now = self._now()
        day_start = self._local_midnight(now.astimezone(calendar.tz).date(), calendar)
        if quote.timestamp >= day_start:  # today's daily bar has closed
            return quote
        minutes = self._known_candles(symbol, Timeframe.M1, start=day_start, end=now)
        if minutes.empty:  # not open yet today, or no session today
            return quote
        price = float(minutes["close"].iloc[-1])
        change = price - quote.price
        return Quote(
            symbol=symbol,
            price=price,
            change=change,
            change_percent=change / quote.price * 100,
            open=float(minutes["open"].iloc[0]),
            high=float(minutes["high"].max()),
            low=float(minutes["low"].min()),
            previous_close=quote.price,
            volume=int(minutes["volume"].sum()),
            timestamp=day_start,
            currency=quote.currency,
            source=self.name,
        )

    def _known_candles(
        self, symbol: str, timeframe: Timeframe, *, start: datetime | None, end: datetime | None
    ) -> pd.DataFrame:
        import pandas as pd

        now = self._now()
        calendar = self._calendar_for(symbol)
        spec = timeframe.spec
        first_day = max(ANCHOR, now.astimezone(calendar.tz).date() - timedelta(days=self.history_days))
        end = min(require_aware(end, "end"), now) if end is not None else now
        if spec.max_lookback is not None:
            earliest = now - spec.max_lookback
            if start is not None and require_aware(start, "start") < earliest:
                raise LookbackExceeded(
                    f"{timeframe.value} candles are available for the last {spec.max_lookback.days} days only"
                )
            start = start or earliest
        start = (
            require_aware(start, "start") if start is not None else self._local_midnight(first_day, calendar)
        )
        if start >= end:
            return empty_candles()

        start_day = max(first_day, start.astimezone(calendar.tz).date())
        end_day = end.astimezone(calendar.tz).date()
        if timeframe == Timeframe.W1:
            candles = self._weekly(symbol, start_day, end_day, now, calendar)
        elif timeframe == Timeframe.D1:
            candles = self._daily(symbol, end_day, calendar).loc[self._local_midnight(start_day, calendar) :]
        else:
            candles = self._intraday(symbol, start_day, end_day, spec.bar, calendar)
            candles = candles[calendar.session_mask(candles.index)]  # early closes cut the session short
        candles = candles[self._closed(candles, timeframe, now, calendar)]
        candles = candles[candles.index >= pd.Timestamp(self._local_midnight(first_day, calendar))]
        return slice_candles(candles, start, end)

    def _calendar_for(self, symbol: str) -> ExchangeCalendar:
        return self.calendar if isinstance(self.calendar, ExchangeCalendar) else self.calendar(symbol)

    def exchange_for(self, symbol: str) -> str:
        return self._calendar_for(symbol).exchange

    def calendar_for(self, symbol: str) -> ExchangeCalendar:
        return self._calendar_for(symbol)

    def _now(self) -> datetime:
        return require_aware(self._clock(), "clock()")

    def _local_midnight(self, day: date, calendar: ExchangeCalendar) -> datetime:
        return datetime.combine(day, datetime.min.time(), calendar.tz).astimezone(UTC)

    # Daily path

    def _daily(self, symbol: str, last_day: date, calendar: ExchangeCalendar) -> pd.DataFrame:
        """Daily bars from ANCHOR to `last_day` (inclusive), indexed by the UTC time of local midnight."""
        import pandas as pd

        days = calendar.trading_days_array(ANCHOR, last_day)
        if days.size == 0:
            return empty_candles()
        years = days.astype("datetime64[Y]")
        year_numbers = years.astype(int) + 1970
        slot = (year_numbers - ANCHOR.year) * _DAYS_PER_YEAR + (days - years).astype(int)
        quarter_slot = (year_numbers - ANCHOR.year) * 4 + (days.astype("datetime64[M]").astype(int) % 12) // 3

        shocks, volume_noise, regimes = [], [], []
        for year in range(ANCHOR.year, int(year_numbers[-1]) + 1):
            rng = np.random.default_rng(_seed(self.seed, symbol, "daily", year))
            shocks.append(rng.standard_normal((_DAYS_PER_YEAR, 4)))
            volume_noise.append(rng.standard_normal(_DAYS_PER_YEAR))
            regimes.append(rng.uniform(size=(4, 2)))
        z = np.concatenate(shocks)[slot]
        v = np.concatenate(volume_noise)[slot]
        regime = np.concatenate(regimes)[quarter_slot]

        is_index = symbol.startswith("^")
        typical = _TYPICAL_LEVELS.get(symbol)
        if typical is not None:
            level = typical * (0.9 + 0.2 * _unit(self.seed, symbol, "level"))
        else:
            level = 100 * 40 ** _unit(self.seed, symbol, "level") * (10 if is_index else 1)
        base_vol = (0.008 if is_index else 0.012) + 0.01 * _unit(self.seed, symbol, "vol")
        sigma = base_vol * (0.6 + 1.2 * regime[:, 1])  # calm to stormy quarters
        drift = (regime[:, 0] - 0.4) * 0.6 / 250  # about -24% to +36% a year
        walk = np.cumsum(drift + sigma * z[:, 0])
        sums = np.concatenate(([0.0], np.cumsum(walk)))
        n = np.arange(1, walk.size + 1)
        window = np.minimum(n, _TREND_WINDOW)
        trend = (sums[n] - sums[n - window]) / window
        close = level * np.exp(walk - trend)

        previous_close = np.concatenate(([close[0] * np.exp(-drift[0] - sigma[0] * z[0, 0])], close[:-1]))
        open_ = previous_close * np.exp(0.25 * sigma * z[:, 1])
        high = np.maximum(open_, close) * np.exp(0.6 * sigma * np.abs(z[:, 2]))
        low = np.minimum(open_, close) * np.exp(-0.6 * sigma * np.abs(z[:, 3]))
        if is_index:
            volume = np.zeros(days.size, dtype="int64")
        else:
            base_volume = 2e5 * 100 ** _unit(self.seed, symbol, "volume")
            volume = base_volume * np.exp(0.35 * v) * (1 + 0.8 * np.abs(z[:, 0]))
            volume = np.maximum(np.round(volume), 1).astype("int64")

        index = pd.DatetimeIndex(days).tz_localize(calendar.tz).tz_convert(UTC).as_unit(INDEX_UNIT)
        index.name = INDEX_NAME
        return pd.DataFrame(
            {
                "open": _to_tick(open_),
                "high": _to_tick(high),
                "low": _to_tick(low),
                "close": _to_tick(close),
                "volume": volume,
            },
            index=index,
        )

    def _weekly(
        self, symbol: str, start_day: date, end_day: date, now: datetime, calendar: ExchangeCalendar
    ) -> pd.DataFrame:
        """Weeks (Monday to Sunday) aggregated from daily bars, stamped at Monday's local midnight."""
        import pandas as pd

        monday = start_day - timedelta(days=start_day.weekday())
        sunday = end_day + timedelta(days=6 - end_day.weekday())  # whole weeks, however the window cuts them
        daily = self._daily(symbol, sunday, calendar).loc[self._local_midnight(monday, calendar) :]
        daily = daily[self._closed(daily, Timeframe.D1, now, calendar)]
        if daily.empty:
            return empty_candles()
        local_days = daily.index.tz_convert(calendar.tz).tz_localize(None).normalize()
        week_start = local_days - pd.to_timedelta(local_days.day_of_week, unit="D")
        weekly = daily.groupby(week_start).agg(
            open=("open", "first"),
            high=("high", "max"),
            low=("low", "min"),
            close=("close", "last"),
            volume=("volume", "sum"),
        )
        weekly.index = (
            pd.DatetimeIndex(weekly.index).tz_localize(calendar.tz).tz_convert(UTC).as_unit(INDEX_UNIT)
        )
        weekly.index.name = INDEX_NAME
        return weekly

    # Intraday

    def _intraday(
        self, symbol: str, start_day: date, end_day: date, bar: timedelta, calendar: ExchangeCalendar
    ) -> pd.DataFrame:
        """Bars of `bar` length aggregated from per-day minute paths bridging the daily open to close."""
        import pandas as pd

        daily = self._daily(symbol, end_day, calendar).loc[self._local_midnight(start_day, calendar) :]
        if daily.empty:
            return empty_candles()
        days = daily.index.tz_convert(calendar.tz).date
        opens_at = [calendar.session_hours(day)[0] for day in days]
        # Regular session length; early closes are cut afterwards by the session mask.
        minutes = (
            (calendar.close.hour - calendar.open.hour) * 60 + calendar.close.minute - calendar.open.minute
        )

        shocks, wicks, volume_noise = [], [], []
        for day in days:
            rng = np.random.default_rng(_seed(self.seed, symbol, "intraday", day.isoformat()))
            shocks.append(rng.standard_normal(minutes))
            wicks.append(np.abs(rng.standard_normal((minutes, 2))))
            volume_noise.append(rng.standard_normal(minutes))
        shock, wick, noise = np.stack(shocks), np.stack(wicks), np.stack(volume_noise)

        position = np.linspace(-1.0, 1.0, minutes)
        u_shape = 1 + 2.0 * position**2  # busy open and close, quiet lunch
        step_scale = u_shape / np.sqrt(np.sum(u_shape**2))
        walk = np.cumsum(shock * step_scale, axis=1)
        progress = np.arange(1, minutes + 1) / minutes
        bridge = walk - progress * walk[:, -1:]  # zero at the close

        day_open, day_close = daily["open"].to_numpy()[:, None], daily["close"].to_numpy()[:, None]
        day_high, day_low = daily["high"].to_numpy()[:, None], daily["low"].to_numpy()[:, None]
        line = day_open + (day_close - day_open) * progress
        spread = np.maximum(day_high - day_low, TICK)
        deviation = _INTRADAY_SIGMA_SHARE * spread * bridge
        # Shrink each day's wiggle so it stays within the day's high and low.
        room_up = np.divide(deviation, day_high - line, out=np.zeros_like(line), where=deviation > 0)
        room_down = np.divide(-deviation, line - day_low, out=np.zeros_like(line), where=deviation < 0)
        excess = np.maximum(room_up.max(axis=1, initial=0), room_down.max(axis=1, initial=0))[:, None]
        close = np.clip(line + deviation / np.maximum(excess, 1.0), day_low, day_high)
        open_ = np.concatenate((day_open, close[:, :-1]), axis=1)
        tick_spread = spread / minutes
        high = np.minimum(np.maximum(open_, close) + wick[:, :, 0] * tick_spread, day_high)
        low = np.maximum(np.minimum(open_, close) - wick[:, :, 1] * tick_spread, day_low)
        if symbol.startswith("^"):
            volume = np.zeros_like(close, dtype="int64")
        else:
            weights = u_shape * np.exp(0.3 * noise)
            share = weights / weights.sum(axis=1, keepdims=True)
            volume = np.maximum(np.round(daily["volume"].to_numpy()[:, None] * share), 1).astype("int64")

        per_bar = max(1, int(bar / timedelta(minutes=1)))
        bar_starts = np.arange(0, minutes, per_bar)
        starts = (np.arange(len(days))[:, None] * minutes + bar_starts).ravel()
        opens, closes, highs, lows, volumes = (a.ravel() for a in (open_, close, high, low, volume))
        last_minute = np.append(starts[1:] - 1, closes.size - 1)
        candles = {
            "open": opens[starts],
            "high": np.maximum.reduceat(highs, starts),
            "low": np.minimum.reduceat(lows, starts),
            "close": closes[last_minute],
            "volume": np.add.reduceat(volumes, starts),
        }
        for column in ("open", "high", "low", "close"):
            candles[column] = _to_tick(candles[column])
        timestamps = [opened.astimezone(UTC) + i * bar for opened in opens_at for i in range(bar_starts.size)]
        index = pd.DatetimeIndex(timestamps).as_unit(INDEX_UNIT)
        index.name = INDEX_NAME
        return pd.DataFrame(candles, index=index)

    def _closed(
        self, candles: pd.DataFrame, timeframe: Timeframe, now: datetime, calendar: ExchangeCalendar
    ) -> np.ndarray:
        """Mask of bars that have finished by `now` (a bar ends at its session's close at the latest)."""
        import pandas as pd

        tz = calendar.tz
        opened = candles.index.tz_convert(tz).tz_localize(None)
        # Each day's own close: early closes, shortened days and special sessions (a Muhurat evening) included.
        days = opened.normalize()
        close_minutes = calendar.close_minutes(days.to_numpy().astype("datetime64[D]"))
        session_close = (days + pd.to_timedelta(close_minutes, unit="min")).tz_localize(tz)
        if timeframe == Timeframe.D1:
            return np.asarray(session_close <= now)
        if timeframe.is_intraday:
            return np.asarray(np.minimum(candles.index + timeframe.spec.bar, session_close) <= now)
        # A week ends at the close of its last trading day; only the current week can still be open.
        now_local = pd.Timestamp(now).tz_convert(tz).tz_localize(None)
        closed = np.array(opened + pd.Timedelta(days=7) <= now_local, dtype=bool)
        for i in np.flatnonzero(~closed):
            monday = opened[i].date()
            last_day = calendar.trading_days(monday, monday + timedelta(days=6))[-1]
            closed[i] = calendar.session_hours(last_day)[1] <= now
        return closed
