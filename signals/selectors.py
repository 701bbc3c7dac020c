from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.db.models import OuterRef, Subquery

from market.models import MarketData
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


def _bar_source():
    """The provider of the bar a signal was made on (`synthetic` for generated demo data), read beside it so a
    BUY on synthetic candles is never shown as one on market prices; null when the bar is no longer stored."""
    return Subquery(
        MarketData.objects.filter(
            symbol=OuterRef("symbol"), timeframe=OuterRef("timeframe"), timestamp=OuterRef("candle_timestamp")
        ).values("source")[:1]
    )


def signal_row(signal_id: int) -> dict | None:
    """One signal in the API's shape (the generate endpoint's 201 body, the stream's signal), None if gone."""
    rows = TradingSignal.objects.filter(pk=signal_id).annotate(source=_bar_source())
    row = rows.values(*SIGNAL_FIELDS, "source").first()
    return None if row is None else signal_to_dict(row)


def signal_to_dict(row: dict) -> dict:
    return {
        **row,
        "candle_timestamp": row["candle_timestamp"].isoformat(),
        "created_at": row["created_at"].isoformat(),
        "source": row["source"] or None,
    }


def signals_list(*, symbol: str, timeframe: Timeframe, limit: int = 20) -> dict:
    """Newest first, cached (10 minutes by default) until a new sync or signal for the symbol. An unknown symbol
    (not in the catalogue, not known to the provider) is a 404, as for quotes."""
    symbol_require_known(symbol=symbol)
    key = f"signals:list:{symbol}:{timeframe.value}:{limit}:{signals_cache_version(symbol)}"

    def build() -> dict:
        rows = (
            TradingSignal.objects.filter(symbol=symbol, timeframe=timeframe.value)
            .annotate(source=_bar_source())
            .values(*SIGNAL_FIELDS, "source")
        )
        return {"results": [signal_to_dict(row) for row in rows[:limit]]}

    return cache.get_or_set(key, build, settings.SIGNAL_CACHE_TTL)
