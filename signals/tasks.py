from __future__ import annotations

import structlog
from celery import shared_task

from market.models import Instrument
from market.providers.errors import ProviderError
from market.services import StaleMarketData
from market.timeframes import Timeframe
from signals.services import (
    TRANSIENT_ERRORS,
    NotEnoughCandles,
    signal_catch_up,
    signal_catch_up_clear,
    signal_catch_up_mark,
    signal_generate,
)

logger = structlog.get_logger(__name__)


@shared_task(name="signals.generate_for_watchlist")
def generate_for_watchlist(timeframe: str = "1D") -> dict:
    """One signal per active instrument and closed bar (a repeated run, e.g. a redelivery, stores nothing new);
    a symbol without enough data, or whose latest closed bar is not stored (the provider down), is skipped with
    the reason, logged and returned, and the run goes on. A symbol skipped for late data gets its signal as soon
    as its candles arrive (signals.receivers), not a day later on a newer bar."""
    tf = Timeframe.parse(timeframe)
    generated, skipped = [], {}
    for symbol in Instrument.objects.filter(active=True).values_list("symbol", flat=True):
        try:
            signal = signal_generate(symbol=symbol, timeframe=tf, once_per_bar=True)
        except (NotEnoughCandles, ProviderError, StaleMarketData) as exc:
            skipped[symbol] = str(exc)
            if isinstance(exc, TRANSIENT_ERRORS):
                signal_catch_up_mark(symbol=symbol, timeframe=tf)
            logger.warning("signal_skipped", symbol=symbol, timeframe=tf.value, reason=str(exc))
            continue
        signal_catch_up_clear(symbol=symbol, timeframe=tf)
        generated.append({"symbol": symbol, "signal_id": signal.id, "signal_type": signal.signal_type})
    logger.info("signals_generated", timeframe=tf.value, generated=len(generated), skipped=len(skipped))
    return {"generated": generated, "skipped": skipped}


@shared_task(name="signals.catch_up", acks_late=True)
def catch_up(symbol: str, timeframe: str) -> dict:
    """The signal of a symbol the scheduled run skipped, once candles for it arrived; safe to run twice."""
    signal = signal_catch_up(symbol=symbol, timeframe=Timeframe.parse(timeframe))
    if signal is None:
        return {"symbol": symbol, "signal_id": None}
    return {"symbol": symbol, "signal_id": signal.id, "signal_type": signal.signal_type}
