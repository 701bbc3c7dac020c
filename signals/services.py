"""Signal generation and backtests over stored candles; the rules themselves are pure (signals.rules)."""

from __future__ import annotations

import math
import uuid
from datetime import date, datetime, timedelta

import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from market.adjust import SERIES_NAMES, Adjustment
from market.bars import bar_close, closed_only
from market.caching import market_version
from market.providers.base import LookbackExceeded
from market.providers.errors import ProviderError, ProviderUnavailable
from market.selectors import candles_frame
from market.services import DEFAULT_DAYS, StaleMarketData, candles_ensure, candles_ensure_current
from market.sources import calendar_for_symbol
from market.symbols import InvalidSymbol
from market.timeframes import Timeframe
from predictions.ml.evaluation import InsufficientHistory
from predictions.models import Prediction
from predictions.selectors import model_default, prediction_system_for_bar
from predictions.services import ModelUnavailable, NoActiveModel, prediction_generate
from signals.backtest import intraday_periods_per_year, run_backtest
from signals.config import SignalConfig
from signals.models import TradingSignal
from signals.rules import evaluate, required_bars
from tradingdash import events
from tradingdash.offload import offloaded

logger = structlog.get_logger(__name__)

# Indicators need warm-up; fetch this many bars beyond the minimum so values have settled.
_EXTRA_BARS = 250


class NotEnoughCandles(Exception):
    """Too few closed candles for the indicators. A plain exception, not a frozen dataclass: raised in a compute
    worker, it is rebuilt in the web worker by setting its `args` and attributes (tradingdash.offload)."""

    def __init__(self, needed: int, available: int) -> None:
        super().__init__(needed, available)
        self.needed = needed
        self.available = available

    def __str__(self) -> str:
        return f"Signals need at least {self.needed} closed candles; {self.available} are available."


class EmptyRange(Exception):
    """No stored candle lies between the requested start and end."""


# What generation and backtests raise as answers, which the views and the API's exception handler map (422, 404,
# 503, 400): raised again as they are in the web worker when they ran in a compute worker. ProviderError covers
# SymbolNotFound, ProviderUnavailable and RateLimited.
ANSWER_ERRORS = (
    NotEnoughCandles,
    EmptyRange,
    ProviderError,
    StaleMarketData,
    InvalidSymbol,
    LookbackExceeded,
)


def signal_config() -> SignalConfig:
    return SignalConfig.from_mapping(settings.SIGNAL_RULES)


def signals_cache_version(symbol: str) -> str:
    """Cached signal reads are keyed by the market data version and the symbol's signal version."""
    return f"{market_version(symbol)}:{cache.get(f'signals:version:{symbol}') or 0}"


def _signals_invalidate(symbol: str) -> None:
    cache.set(f"signals:version:{symbol}", uuid.uuid4().hex[:12], 7 * 24 * 3600)


def _latest_closed_candles(*, symbol: str, timeframe: Timeframe, limit: int, needed: int):
    """Closed stored candles up to the latest bar closed on the exchange's calendar, else StaleMarketData (a
    signal on an older bar would be stored and announced as current; candles_ensure_current). The default history
    is fetched first if none was ever fetched, and back to the first-fetch depth when fewer than `needed` are
    stored (e.g. only a recent range was ever asked for)."""
    candles_ensure_current(
        symbol=symbol,
        timeframe=timeframe,
        consequence="No signal: it would be a decision on a bar that is no longer the latest.",
    )
    candles = _read_closed(symbol=symbol, timeframe=timeframe, limit=limit)
    if len(candles) < needed:
        start = timezone.now() - timedelta(days=DEFAULT_DAYS[timeframe])
        candles_ensure(symbol=symbol, timeframe=timeframe, start=start, end=None)
        candles = _read_closed(symbol=symbol, timeframe=timeframe, limit=limit)
    return candles


# Rules, levels and backtests read the split-adjusted series: a split day is no crash to them, and the last bar
# (the entry) is as traded.
SERIES: Adjustment = "splits"


def _read_closed(*, symbol: str, timeframe: Timeframe, limit: int | None):
    candles = candles_frame(symbol=symbol, timeframe=timeframe, limit=limit, final_only=True, adjust=SERIES)
    return closed_only(candles, calendar_for_symbol(symbol), timeframe, timezone.now())


def _system_prediction(*, symbol: str, timeframe: Timeframe, base_timestamp) -> tuple[Prediction | None, str]:
    """The system's horizon-1 prediction by the default model from the same last closed bar, made now if it can
    be made in this process; else (None, why the prediction factor is absent). Users' predictions never count."""
    trained = model_default(symbol=symbol, timeframe=timeframe, horizon=1)
    if trained is None:
        return None, "no model beats the naive baseline out of sample, and naive has no directional view"
    prediction = prediction_system_for_bar(trained=trained, base_timestamp=base_timestamp)
    if prediction is None:
        if trained.needs_tensorflow:
            return (
                None,
                f"the default model ({trained}) runs in ML workers only and has not predicted this bar yet",
            )
        try:
            prediction = prediction_generate(
                symbol=symbol, timeframe=timeframe, horizon=1, model=trained.algorithm, user_id=None
            )
        except (NoActiveModel, ModelUnavailable, InsufficientHistory, StaleMarketData) as exc:
            # A signal never fails for its prediction: the factor is absent and the reasoning says why.
            logger.warning("system_prediction_failed", symbol=symbol, model=str(trained), error=str(exc))
            return None, f"the default model ({trained}) could not predict: {exc}"
    if prediction.base_timestamp != base_timestamp:
        return None, "the default model's prediction is not from the signal's bar"
    calendar = calendar_for_symbol(symbol)
    target_close = bar_close(calendar, timeframe, prediction.target_time)
    if target_close <= timezone.now():
        # Made when this bar was the latest; the bar it predicts has closed since and is not stored: a forecast
        # no more. (Stale candles are refused before this; the bar may close while the signal is made.)
        return None, (
            f"the system prediction from this bar is stale: the bar it predicts closed at "
            f"{target_close.astimezone(calendar.tz):%Y-%m-%d %H:%M %Z} and newer candles are not stored"
        )
    return prediction, ""


def _signal_for_bar(*, symbol: str, timeframe: Timeframe, bar: datetime) -> TradingSignal | None:
    return (
        TradingSignal.objects.filter(symbol=symbol, timeframe=timeframe.value, candle_timestamp=bar)
        .order_by("-created_at", "-id")
        .first()
    )


def _bar_lock(*, symbol: str, timeframe: Timeframe) -> None:
    """Serialise once-per-bar generation of one series until the transaction ends (PostgreSQL; elsewhere one
    process runs the tasks)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"signal:{symbol}:{timeframe.value}"]
            )


def signal_generate(*, symbol: str, timeframe: Timeframe, once_per_bar: bool = False) -> TradingSignal:
    """Evaluate the rules on the latest closed candles (and the system's prediction from the same bar, when a
    model beats naive) and store it; StaleMarketData when the latest closed bar is not stored. With `once_per_bar` (scheduled runs, which a redelivered or concurrent
    task may repeat) a bar that already has a signal keeps it: that signal is returned, nothing is stored or
    announced again."""
    config = signal_config()
    needed = required_bars(config)
    candles = _latest_closed_candles(
        symbol=symbol, timeframe=timeframe, limit=needed + _EXTRA_BARS, needed=needed
    )
    if len(candles) < needed:
        raise NotEnoughCandles(needed=needed, available=len(candles))
    bar = candles.index[-1].to_pydatetime()
    if once_per_bar and (existing := _signal_for_bar(symbol=symbol, timeframe=timeframe, bar=bar)):
        return existing
    prediction, absent = None, "its weight is 0"
    if config.prediction_weight > 0:
        base = candles.index[-1].to_pydatetime()
        prediction, absent = _system_prediction(symbol=symbol, timeframe=timeframe, base_timestamp=base)
    predicted_return = None
    if prediction is not None and prediction.base_price > 0:
        predicted_return = prediction.predicted_price / prediction.base_price - 1
    result = evaluate(candles, config=config, predicted_return=predicted_return)
    reasoning = result.reasoning
    if predicted_return is None and config.prediction_weight > 0:
        reasoning += (
            f"; prediction factor absent: {absent} (its weight is redistributed over the factors above)"
        )
    values = {
        "signal_type": str(result.signal_type),
        "strength": result.strength,
        "score": result.score,
        "entry_price": result.entry_price,
        "price_target": result.price_target,
        "stop_loss": result.stop_loss,
        "support_level": result.support_level,
        "resistance_level": result.resistance_level,
        "reasoning": reasoning,
        "factors": [factor.to_dict() for factor in result.factors],
        "prediction_id": prediction.pk if prediction is not None else None,
    }
    with transaction.atomic():
        _bar_lock(symbol=symbol, timeframe=timeframe)
        # The same closed bar with the same inputs is the same signal: a run with no new bar (a weekday holiday,
        # a retried task, a second POST) returns it rather than storing and announcing it again as "new"; a
        # scheduled run keeps whatever signal the bar already has.
        latest = _signal_for_bar(symbol=symbol, timeframe=timeframe, bar=bar)
        if latest is not None and (once_per_bar or _same_signal(latest, values)):
            return latest
        signal = TradingSignal.objects.create(
            symbol=symbol, timeframe=timeframe.value, candle_timestamp=bar, **values
        )
    _signals_invalidate(symbol)
    events.announce(
        events.SignalCreated(
            signal_id=signal.pk, symbol=symbol, timeframe=timeframe.value, signal_type=signal.signal_type
        )
    )
    logger.info("signal_generated", symbol=symbol, timeframe=timeframe.value, signal=signal.signal_type)
    return signal


@offloaded(errors=ANSWER_ERRORS)
def signal_generate_id(*, symbol: str, timeframe: Timeframe) -> int:
    """signal_generate for an API request: the stored signal's id, plain data, so that through a web worker the
    signal is made in a compute worker (pandas, TA-Lib, the provider and the prediction factor's models stay
    out of web workers)."""
    return signal_generate(symbol=symbol, timeframe=timeframe).pk


# How long a symbol the scheduled run skipped waits for its candles: past a long weekend, while the provider is out.
CATCH_UP_SECONDS = 4 * 24 * 3600
# Why a scheduled run may skip a symbol and catch up once candles arrive: the data was late, not wrong.
TRANSIENT_ERRORS = (StaleMarketData, ProviderUnavailable)


def _catch_up_key(symbol: str, timeframe: Timeframe) -> str:
    return f"signals:catch-up:{symbol}:{timeframe.value}"


def signal_catch_up_mark(*, symbol: str, timeframe: Timeframe) -> None:
    """The scheduled run skipped `symbol` because its latest closed bar was not stored (the provider down or
    late): its signal is made when candles arrive (signal_catch_up), not at the next scheduled run, when a newer
    bar is the latest and this one would never get a signal."""
    cache.set(_catch_up_key(symbol, timeframe), 1, CATCH_UP_SECONDS)


def signal_catch_up_clear(*, symbol: str, timeframe: Timeframe) -> None:
    cache.delete(_catch_up_key(symbol, timeframe))


def signal_catch_up_pending(*, symbol: str, timeframe: Timeframe) -> bool:
    return cache.get(_catch_up_key(symbol, timeframe)) is not None


def signal_catch_up(*, symbol: str, timeframe: Timeframe) -> TradingSignal | None:
    """The scheduled run's signal for a symbol it skipped, now that candles arrived: made once per bar, as the
    scheduled run makes it; None when no catch-up is pending (another task took it) or the candles are still
    not current (then it waits for the next ones)."""
    if not cache.delete(_catch_up_key(symbol, timeframe)):
        return None  # taken first, so the candles this generation fetches do not start another one
    try:
        signal = signal_generate(symbol=symbol, timeframe=timeframe, once_per_bar=True)
    except TRANSIENT_ERRORS as exc:
        signal_catch_up_mark(symbol=symbol, timeframe=timeframe)
        logger.warning("signal_catch_up_waiting", symbol=symbol, timeframe=timeframe.value, reason=str(exc))
        return None
    except NotEnoughCandles as exc:
        logger.warning("signal_catch_up_skipped", symbol=symbol, timeframe=timeframe.value, reason=str(exc))
        return None
    logger.info("signal_caught_up", symbol=symbol, timeframe=timeframe.value, signal_id=signal.pk)
    return signal


def _same_signal(signal: TradingSignal, values: dict) -> bool:
    """Whether a stored signal says what `values` say (floats equal up to rounding)."""

    def same(a, b) -> bool:
        if isinstance(a, float) and isinstance(b, float):
            return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
        return a == b

    return all(same(getattr(signal, name), value) for name, value in values.items())


@offloaded(errors=ANSWER_ERRORS)
def signal_backtest(
    *,
    symbol: str,
    timeframe: Timeframe,
    start: datetime | None = None,
    end: datetime | None = None,
    commission_bps: float = 0.0,
) -> dict:
    """Replay the rules bar by bar over the stored history (no look-ahead; next-open entries), fetching first
    what the range asked for was never fetched. History may be stale: it is replayed, and `stale` says that the
    provider failed to bring the range up to date (as market reads do). Plain JSON data: through a web worker it
    runs in a compute worker."""
    config = signal_config()
    needed = required_bars(config) + 2
    stale = _backtest_range_ensure(symbol=symbol, timeframe=timeframe, start=start, end=end, warmup=needed)
    latest = candles_ensure(symbol=symbol, timeframe=timeframe, start=None, end=None)
    stale = stale or (latest.stale and end is None)  # with an `end`, the range's own fetch reaches the latest
    candles = _read_closed(symbol=symbol, timeframe=timeframe, limit=None)
    if len(candles) < needed:
        raise NotEnoughCandles(needed=needed, available=len(candles))
    if end is not None:
        # The API's `end` is exclusive (a date means "through that day"); run_backtest's is inclusive.
        end = end - timedelta(microseconds=1)
    in_range = candles.index
    if start is not None:
        in_range = in_range[in_range >= start]
    if end is not None:
        in_range = in_range[in_range <= end]
    if in_range.empty:
        raise EmptyRange("No stored candles between start and end.")
    result = run_backtest(
        candles,
        config=config,
        commission_bps=commission_bps,
        start=start,
        end=end,
        periods_per_year=_periods_per_year(symbol=symbol, timeframe=timeframe),
    )
    payload = _jsonable(result.to_dict())
    payload.update(
        {
            "symbol": symbol,
            "timeframe": timeframe.value,
            "commission_bps": commission_bps,
            "series": SERIES_NAMES[SERIES],
            "stale": stale,
        }
    )
    payload.update(_factors_replayed(config))
    return payload


def _backtest_range_ensure(
    *, symbol: str, timeframe: Timeframe, start: datetime | None, end: datetime | None, warmup: int
) -> bool:
    """Fetch what a backtest of [start, end) reads and was never fetched: the range and the `warmup` bars before
    it (the default history before `end` without a start; signal_backtest adds the latest). Only what the
    provider still serves: a start beyond an intraday lookback runs on what is stored. Whether any of it is
    served stale (the provider failed)."""
    if start is None and end is None:
        return False
    if start is None:
        return candles_ensure(symbol=symbol, timeframe=timeframe, start=None, end=end).stale
    stale = candles_ensure(symbol=symbol, timeframe=timeframe, start=None, end=start, limit=warmup).stale
    lookback = timeframe.spec.max_lookback
    if lookback is not None:
        start = max(start, timezone.now() - lookback + timedelta(minutes=1))
    if end is None or start < end:
        stale = candles_ensure(symbol=symbol, timeframe=timeframe, start=start, end=end).stale or stale
    return stale


def _periods_per_year(*, symbol: str, timeframe: Timeframe) -> float | None:
    """Intraday: the bars of a regular session of the symbol's exchange (LSE's 15-minute bars are 34 a session,
    NSE's 25), 252 sessions a year. None otherwise: daily, weekly and monthly bars are inferred from their spacing."""
    if not timeframe.is_intraday:
        return None
    calendar = calendar_for_symbol(symbol)
    day = date(2000, 1, 3)  # any date: the regular hours are the same every day
    session = datetime.combine(day, calendar.close) - datetime.combine(day, calendar.open)
    return intraday_periods_per_year(session, timeframe.spec.bar)


def _factors_replayed(config: SignalConfig) -> dict:
    """Which of the live signal's factors the backtest replays. The prediction factor is not: no out-of-sample
    (walk-forward) prediction is stored for every past bar, and replaying today's model over the bars it was
    trained on would be look-ahead."""
    active = [name for name, weight in config.weights.items() if weight > 0]
    not_replayed = {}
    if "prediction" in active:
        not_replayed["prediction"] = (
            "no out-of-sample prediction exists for each past bar (today's model has seen them), so the "
            "backtest scores the other factors with the prediction's weight redistributed over them"
        )
    return {
        "factors_replayed": [name for name in active if name not in not_replayed],
        "factors_not_replayed": not_replayed,
    }


def _jsonable(value):
    """Plain JSON types: timestamps as ISO strings, non-finite floats (e.g. a Sharpe ratio with no variance) as
    null."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return value
