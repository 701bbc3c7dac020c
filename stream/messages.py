"""The server messages of the live stream, built from what the other apps announce. Each carries its `type`
and the exchange-local `time` it was sent; prices and rows keep the API's field names."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from market.bars import bar_close
from market.models import MarketData
from market.sources import get_calendar
from market.timeframes import Timeframe
from predictions.models import Prediction
from predictions.selectors import PREDICTION_FIELDS, prediction_to_dict
from signals.models import TradingSignal
from signals.selectors import SIGNAL_FIELDS, signal_to_dict
from stream.clock import exchange_of, exchange_time


def _now(exchange: str) -> str:
    return exchange_time(timezone.now(), exchange)


def quote_message(*, symbol: str, quote: dict[str, Any]) -> dict:
    exchange = exchange_of(symbol)
    return {
        "type": "quote",
        "time": _now(exchange),
        "symbol": symbol,
        "price": quote["price"],
        "change": quote.get("change"),
        "change_pct": quote.get("change_percent"),
        "volume": quote.get("volume"),
        "stale": bool(quote.get("stale", False)),
    }


def candle_message(*, symbol: str, timeframe: str, opened_at: datetime) -> dict | None:
    """The stored bar that opened at `opened_at`, and whether it has closed (`final`) or is still forming."""
    row = (
        MarketData.objects.filter(symbol=symbol, timeframe=timeframe, timestamp=opened_at)
        .values("timestamp", "open_price", "high_price", "low_price", "close_price", "volume")
        .first()
    )
    if row is None:
        return None
    exchange = exchange_of(symbol)
    calendar = get_calendar(exchange)
    now = timezone.now()
    return {
        "type": "candle",
        "time": exchange_time(now, exchange),
        "symbol": symbol,
        "timeframe": timeframe,
        "bar": {
            "timestamp": exchange_time(row["timestamp"], exchange),
            "open": row["open_price"],
            "high": row["high_price"],
            "low": row["low_price"],
            "close": row["close_price"],
            "volume": row["volume"],
        },
        "final": bar_close(calendar, Timeframe.parse(timeframe), row["timestamp"]) <= now,
    }


def signal_message(*, signal_id: int) -> dict | None:
    row = TradingSignal.objects.filter(pk=signal_id).values(*SIGNAL_FIELDS).first()
    if row is None:
        return None
    return {"type": "signal", "time": _now(exchange_of(row["symbol"])), "signal": signal_to_dict(row)}


def prediction_message(*, prediction_id: int, scored: bool) -> dict | None:
    row = Prediction.objects.filter(pk=prediction_id).values(*PREDICTION_FIELDS).first()
    if row is None:
        return None
    return {
        "type": "prediction",
        "time": _now(exchange_of(row["symbol"])),
        "event": "scored" if scored else "new",
        "prediction": prediction_to_dict(row),
    }


def task_message(*, task_id: str, name: str, state: str, progress: float | None, stage: str | None) -> dict:
    return {
        "type": "task",
        "time": _now("NSE"),
        "task_id": task_id,
        "name": name,
        "state": state,
        "progress": progress,
        "stage": stage,
    }
