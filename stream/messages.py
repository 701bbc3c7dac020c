"""The server messages of the live stream, built from what the other apps announce. Each carries its `type`
and the exchange-local `time` it was sent; prices and rows keep the API's field names."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.cache import cache
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from market.models import MarketData
from market.sources import get_calendar
from predictions.models import Prediction
from predictions.selectors import PREDICTION_FIELDS, predictions_to_dicts
from signals.selectors import signal_row
from stream.clock import exchange_of, exchange_time


def _now(exchange: str) -> str:
    return exchange_time(timezone.now(), exchange)


def quote_message(*, symbol: str, quote: dict[str, Any]) -> dict:
    """A quote as streamed, with when it was quoted (`timestamp`) and where its exchange stands now
    (`market_status`: open, pre_open or closed): a quote fetched while the exchange is closed (the last close,
    served on a weekend), or one of an earlier day while it is open (a provider with nothing of today yet), is no
    live tick, and `live` says so."""
    exchange = exchange_of(symbol)
    now = timezone.now()
    calendar = get_calendar(exchange)
    status = calendar.status(now)
    quoted_at = _aware(quote.get("timestamp"))
    stale = bool(quote.get("stale", False))
    today = quoted_at is not None and (
        quoted_at.astimezone(calendar.tz).date() == now.astimezone(calendar.tz).date()
    )
    return {
        "type": "quote",
        "time": exchange_time(now, exchange),
        "symbol": symbol,
        "price": quote["price"],
        "change": quote.get("change"),
        "change_pct": quote.get("change_percent"),
        "volume": quote.get("volume"),
        "stale": stale,
        "timestamp": exchange_time(quoted_at, exchange) if quoted_at is not None else None,
        "market_status": status.session,
        "live": status.is_open and not stale and today,
        "source": quote.get("source"),  # as the quote endpoint: `synthetic` is generated demo data
    }


def _aware(value: Any) -> datetime | None:
    """The quote payload's timestamp (an ISO string, or a datetime), aware; UTC when it names no zone."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if not isinstance(value, datetime):
        return None
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


# Which bars of a series the stream sent last: the newest bar's open and values (market.services re-fetches an
# overlap of bars already stored, so most CandlesStored events repeat bars clients have).
_SENT_KEY = "stream:candles:{symbol}:{timeframe}"
_SENT_SECONDS = 14 * 24 * 3600
# At most this many bars per event: a sync's overlap is a few bars; a longer catch-up is read over the API.
MAX_CANDLES_PER_EVENT = 20


def candle_messages(*, symbol: str, timeframe: str, first: datetime, last: datetime) -> list[dict]:
    """The stored bars of [first, last] that clients have not had as they are now, oldest first: the bar the
    stream last sent, when its values changed (a forming bar grew, or closed: `final`), and every newer bar,
    so the bar sent forming is also sent final once a sync stores it closed. A re-sync or a retried task that
    changed nothing sends nothing. Without a record of what was sent (the first event of a series, Redis
    lost it), the newest bar only, if it is the series' newest: history filled in for a read of past dates is
    no live bar."""
    key = _SENT_KEY.format(symbol=symbol, timeframe=timeframe)
    sent = cache.get(key)
    series = MarketData.objects.filter(symbol=symbol, timeframe=timeframe)
    if sent is not None:
        rows = series.filter(
            timestamp__range=(first, last), timestamp__gte=datetime.fromtimestamp(sent["at"], tz=UTC)
        )
    elif series.filter(timestamp__gt=last).exists():
        return []
    else:
        rows = series.filter(timestamp__range=(first, last))
    rows = list(
        rows.order_by("-timestamp").values(
            "timestamp", "open_price", "high_price", "low_price", "close_price", "volume", "final", "source"
        )[: MAX_CANDLES_PER_EVENT if sent is not None else 1]
    )[::-1]
    if (
        sent is not None
        and rows
        and [rows[0]["timestamp"].timestamp(), _values(rows[0])] == [sent["at"], sent["values"]]
    ):
        rows = rows[1:]  # the bar sent last, unchanged
    if not rows:
        if sent is not None:
            cache.touch(key, _SENT_SECONDS)
        return []
    newest = rows[-1]
    cache.set(key, {"at": newest["timestamp"].timestamp(), "values": _values(newest)}, _SENT_SECONDS)
    exchange = exchange_of(symbol)
    return [_candle_message(symbol=symbol, timeframe=timeframe, exchange=exchange, row=row) for row in rows]


def _values(row: dict) -> list:
    return [
        row[field] for field in ("open_price", "high_price", "low_price", "close_price", "volume", "final")
    ]


def _candle_message(*, symbol: str, timeframe: str, exchange: str, row: dict) -> dict:
    """A stored bar, and whether its values are the closed bar's (`final`) or a forming bar's: as stored, i.e.
    whether it had closed when it was fetched (market.services.candles_upsert), not whether it has closed by
    now (values fetched a second before the close are partial)."""
    return {
        "type": "candle",
        "time": _now(exchange),
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
        "final": row["final"],
        "source": row["source"],  # as the candles endpoint: `synthetic` is generated demo data
    }


def signal_message(*, signal_id: int) -> dict | None:
    row = signal_row(signal_id)  # the API's shape, with the `source` of the bar it was made on
    if row is None:
        return None
    return {"type": "signal", "time": _now(exchange_of(row["symbol"])), "signal": row}


def prediction_message(*, prediction_id: int, scored: bool) -> dict | None:
    row = Prediction.objects.filter(pk=prediction_id).values(*PREDICTION_FIELDS).first()
    if row is None:
        return None
    return {
        "type": "prediction",
        "time": _now(exchange_of(row["symbol"])),
        "event": "scored" if scored else "new",
        "prediction": predictions_to_dicts([row])[0],
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
