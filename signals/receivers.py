"""Handlers of tradingdash.events, subscribed in SignalsConfig.ready: cheap (one cache read), they only enqueue
after commit."""

from __future__ import annotations

from django.db import transaction

from market.timeframes import Timeframe
from signals.services import signal_catch_up_pending
from tradingdash.events import CandlesStored

# A catch-up started later than this is superseded by the next scheduled run.
CATCH_UP_EXPIRES = 6 * 3600


def signals_on_candles(event: CandlesStored) -> None:
    """Candles arrived for a symbol the scheduled run skipped for late data: make its signal now."""
    from signals.tasks import catch_up

    try:
        timeframe = Timeframe.parse(event.timeframe)
    except ValueError:
        return
    if signal_catch_up_pending(symbol=event.symbol, timeframe=timeframe):
        args = [event.symbol, timeframe.value]
        transaction.on_commit(lambda: catch_up.apply_async(args=args, expires=CATCH_UP_EXPIRES), robust=True)
