from __future__ import annotations

from django.conf import settings
from django.core.cache import cache

from market.selectors import symbol_require_known
from market.timeframes import Timeframe
from signals.models import TradingSignal
from signals.services import signals_cache_version

SIGNAL_FIELDS = (
    "id",
    "symbol",
    "timeframe",
    "signal_type",
    "strength",
    "score",
    "entry_price",
    "price_target",
    "stop_loss",
    "support_level",
    "resistance_level",
    "candle_timestamp",
    "reasoning",
    "factors",
    "prediction_id",
    "created_at",
)


def signal_to_dict(row: dict) -> dict:
    return {
        **row,
        "candle_timestamp": row["candle_timestamp"].isoformat(),
        "created_at": row["created_at"].isoformat(),
    }


def signals_list(*, symbol: str, timeframe: Timeframe, limit: int = 20) -> dict:
    """Newest first, cached (10 minutes by default) until a new sync or signal for the symbol. An unknown symbol
    (not in the catalogue, not known to the provider) is a 404, as for quotes."""
    symbol_require_known(symbol=symbol)
    key = f"signals:list:{symbol}:{timeframe.value}:{limit}:{signals_cache_version(symbol)}"

    def build() -> dict:
        rows = TradingSignal.objects.filter(symbol=symbol, timeframe=timeframe.value).values(*SIGNAL_FIELDS)
        return {"results": [signal_to_dict(row) for row in rows[:limit]]}

    return cache.get_or_set(key, build, settings.SIGNAL_CACHE_TTL)
