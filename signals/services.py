"""Signal generation and backtests over stored candles; the rules themselves are pure (signals.rules)."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from market.bars import closed_only
from market.caching import market_version
from market.selectors import candles_frame
from market.services import candles_ensure
from market.sources import get_calendar
from market.timeframes import Timeframe
from signals.backtest import run_backtest
from signals.config import SignalConfig
from signals.models import TradingSignal
from signals.rules import evaluate, required_bars
from tradingdash import events

logger = structlog.get_logger(__name__)

# Indicators need warm-up; fetch this many bars beyond the minimum so values have settled.
_EXTRA_BARS = 250


@dataclass(frozen=True)
class NotEnoughCandles(Exception):
    """Too few closed candles for the indicators."""

    needed: int
    available: int

    def __str__(self) -> str:
        return f"Signals need at least {self.needed} closed candles; {self.available} are available."


class EmptyRange(Exception):
    """No stored candle lies between the requested start and end."""


def signal_config() -> SignalConfig:
    return SignalConfig.from_mapping(settings.SIGNAL_RULES)


def signals_cache_version(symbol: str) -> str:
    """Cached signal reads are keyed by the market data version and the symbol's signal version."""
    return f"{market_version(symbol)}:{cache.get(f'signals:version:{symbol}') or 0}"


def _signals_invalidate(symbol: str) -> None:
    cache.set(f"signals:version:{symbol}", uuid.uuid4().hex[:12], 7 * 24 * 3600)


def _closed_candles(*, symbol: str, timeframe: Timeframe, limit: int | None):
    candles_ensure(symbol=symbol, timeframe=timeframe, start=None, end=None)
    candles = candles_frame(symbol=symbol, timeframe=timeframe, limit=limit)
    return closed_only(candles, get_calendar(), timeframe, timezone.now())


def _latest_prediction(symbol: str, timeframe: Timeframe):
    from predictions.selectors import prediction_latest_usable

    return prediction_latest_usable(symbol=symbol, timeframe=timeframe)


def signal_generate(*, symbol: str, timeframe: Timeframe) -> TradingSignal:
    """Evaluate the rules on the latest closed candles (and the latest unexpired prediction) and store it."""
    config = signal_config()
    needed = required_bars(config)
    candles = _closed_candles(symbol=symbol, timeframe=timeframe, limit=needed + _EXTRA_BARS)
    if len(candles) < needed:
        raise NotEnoughCandles(needed=needed, available=len(candles))
    prediction = _latest_prediction(symbol, timeframe)
    predicted_return = None
    if prediction is not None and prediction.base_price > 0:
        predicted_return = prediction.predicted_price / prediction.base_price - 1
    result = evaluate(candles, config=config, predicted_return=predicted_return)
    signal = TradingSignal.objects.create(
        symbol=symbol,
        timeframe=timeframe.value,
        signal_type=str(result.signal_type),
        strength=result.strength,
        score=result.score,
        entry_price=result.entry_price,
        price_target=result.price_target,
        stop_loss=result.stop_loss,
        support_level=result.support_level,
        resistance_level=result.resistance_level,
        candle_timestamp=result.candle_time.to_pydatetime(),
        reasoning=result.reasoning,
        factors=[factor.to_dict() for factor in result.factors],
        prediction=prediction,
    )
    _signals_invalidate(symbol)
    events.announce(
        events.SignalCreated(
            signal_id=signal.pk, symbol=symbol, timeframe=timeframe.value, signal_type=signal.signal_type
        )
    )
    logger.info("signal_generated", symbol=symbol, timeframe=timeframe.value, signal=signal.signal_type)
    return signal


def signal_backtest(
    *,
    symbol: str,
    timeframe: Timeframe,
    start: datetime | None = None,
    end: datetime | None = None,
    commission_bps: float = 0.0,
) -> dict:
    """Replay the rules bar by bar over the stored history (no look-ahead; next-open entries)."""
    config = signal_config()
    candles = _closed_candles(symbol=symbol, timeframe=timeframe, limit=None)
    needed = required_bars(config) + 2
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
    result = run_backtest(candles, config=config, commission_bps=commission_bps, start=start, end=end)
    payload = _jsonable(result.to_dict())
    payload.update({"symbol": symbol, "timeframe": timeframe.value, "commission_bps": commission_bps})
    return payload


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
