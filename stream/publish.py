"""The one way every app sends something to live-stream clients: through the channel layer, so a message
published in any web process or Celery worker reaches the clients of every web process."""

from __future__ import annotations

import json
from typing import Any

import structlog
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from market.presentation import present
from market.sources import price_tick_for_symbol, time_zone_for_symbol
from stream.clock import exchange_time
from stream.groups import symbol_group, user_group

logger = structlog.get_logger(__name__)

# The consumer method that receives group messages (`stream.message` -> `stream_message`).
MESSAGE_TYPE = "stream.message"


def publish_to_user(user_id: int, message: dict, *, must_send: bool = False) -> None:
    """Send `message` to every open stream of one user (alerts, task progress), whatever they subscribed to.
    A message without a `time` gets the current exchange time. `must_send`: a failing channel layer raises
    instead of losing the message, for a caller that retries (an alert's delivery), which must not record a
    message that never left as delivered."""
    _group_send(user_group(user_id), message, must_send=must_send)


def publish_to_symbol(*, topic: str, symbol: str, message: dict[str, Any]) -> None:
    """Send `message` to the clients subscribed to `topic` of `symbol`."""
    _group_send(symbol_group(topic, symbol), message, topic=topic, symbol=symbol)


def _stamped(message: dict) -> dict:
    """The message with its `time`: now in the clock of the exchange of its `symbol` (as its other times
    read), else of the default exchange."""
    if "time" in message:
        return message
    now, symbol = timezone.now(), message.get("symbol")
    if isinstance(symbol, str) and symbol:
        return {**message, "time": now.astimezone(time_zone_for_symbol(symbol)).isoformat()}
    return {**message, "time": exchange_time(now)}


def group_message(message: dict, *, topic: str | None = None, symbol: str | None = None) -> dict:
    """What goes through the channel layer: the client's JSON, encoded once here rather than once per socket in
    every web process; a quote also carries the symbol, time and `live` its consumers track for the stale-feed rule.
    Numbers read as in the API (market.presentation): traded prices at the symbol's tick, other prices and
    percentages at 2 decimals, ratios at 4 significant digits. A message to a symbol's group names its `topic`
    and `symbol`: one already on its way to a socket when the client unsubscribed is dropped there."""
    readable = present(message, zone_of=time_zone_for_symbol, tick_of=price_tick_for_symbol)
    event = {"type": MESSAGE_TYPE, "text": json.dumps(readable)}
    if topic is not None:
        event["topic"], event["symbol"] = topic, symbol
    if message.get("type") == "quote":
        event["quote"] = {
            "symbol": message.get("symbol"),
            "time": message.get("time"),
            "live": message.get("live"),
        }
    return event


def _group_send(
    group: str,
    message: dict,
    *,
    topic: str | None = None,
    symbol: str | None = None,
    must_send: bool = False,
) -> None:
    """A dead channel layer loses the live message (clients catch up through the API), never fails the caller,
    unless it `must_send`."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        event = group_message(_stamped(message), topic=topic, symbol=symbol)
        async_to_sync(layer.group_send)(group, event)
    except Exception as exc:  # Redis down or slow: the publisher (a task, a request) must carry on
        if must_send:
            raise
        logger.warning("stream_publish_failed", group=group, error=f"{type(exc).__name__}: {exc}")
