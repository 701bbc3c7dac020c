from __future__ import annotations

import structlog
from celery import shared_task

from market.models import Instrument
from market.providers.errors import ProviderError
from market.timeframes import Timeframe
from signals.services import NotEnoughCandles, signal_generate

logger = structlog.get_logger(__name__)


@shared_task(name="signals.generate_for_watchlist")
def generate_for_watchlist(timeframe: str = "1D") -> dict:
    """One signal per active instrument and closed bar (a repeated run, e.g. a redelivery, stores nothing new);
    a symbol without enough data is reported, not fatal."""
    tf = Timeframe.parse(timeframe)
    generated, skipped = [], {}
    for symbol in Instrument.objects.filter(active=True).values_list("symbol", flat=True):
        try:
            signal = signal_generate(symbol=symbol, timeframe=tf, once_per_bar=True)
        except (NotEnoughCandles, ProviderError) as exc:
            skipped[symbol] = str(exc)
            continue
        generated.append({"symbol": symbol, "signal_id": signal.id, "signal_type": signal.signal_type})
    logger.info("signals_generated", timeframe=tf.value, generated=len(generated), skipped=len(skipped))
    return {"generated": generated, "skipped": skipped}
