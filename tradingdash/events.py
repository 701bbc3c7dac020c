"""The few events one app announces and others react to, and the registry that connects them.

The announcing app imports nothing of its listeners: `market` says that candles were stored, and apps that care
(predictions' re-scoring, alerts, the live stream) subscribe in their AppConfig.ready. Handlers run in the
announcer's process and transaction, so they must be cheap: enqueue a task with `transaction.on_commit`, never do
the work inline.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

import structlog

logger = structlog.get_logger(__name__)


@dataclass(frozen=True, kw_only=True)
class CandlesStored:
    """Candles of one symbol and timeframe were inserted or changed (a partial bar completed counts as changed)."""

    symbol: str
    timeframe: str
    first: datetime | None
    last: datetime | None
    inserted: int = 0
    updated: int = 0
    source: str = ""
    # Open times of the bars inserted or changed (not those sent again as stored): a listener that keeps what was
    # computed from a span of bars (a model's training window) tells a bar rewritten or filled in inside that
    # span from bars appended after it.
    written: tuple[datetime, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CandlesDeleted:
    """Stored candles of one symbol and timeframe were deleted (staff, in the admin): `deleted` holds their open
    times."""

    symbol: str
    timeframe: str
    deleted: tuple[datetime, ...]


@dataclass(frozen=True, kw_only=True)
class CorporateActionsChanged:
    """Corporate actions of one symbol with ex-dates in [first, last] were stored, changed or deleted: whatever was
    computed from its adjusted prices across those days (a prediction's score across a split) is out of date."""

    symbol: str
    first: date
    last: date
    # Whether a split or bonus (an action that changes the share count, so every split-adjusted price before its
    # ex-date) was among them; True when the announcer cannot tell.
    share_count: bool = True


@dataclass(frozen=True, kw_only=True)
class QuoteRefreshed:
    """A fresh quote for one symbol was fetched (payload in the quote endpoint's shape)."""

    symbol: str
    quote: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class SignalCreated:
    """A trading signal was generated and stored."""

    signal_id: int
    symbol: str
    timeframe: str
    signal_type: str


@dataclass(frozen=True, kw_only=True)
class PredictionStored:
    """A prediction was created, or scored against its realized price (`scored`)."""

    prediction_id: int
    symbol: str
    timeframe: str
    user_id: int | None
    scored: bool = False


@dataclass(frozen=True, kw_only=True)
class TaskUpdated:
    """A user's background task moved on: its Celery state, and progress (0-1) and stage while it runs."""

    task_id: str
    name: str
    user_id: int | None
    state: str
    progress: float | None = None
    stage: str | None = None


@dataclass(frozen=True, kw_only=True)
class UserReactivated:
    """A deactivated user was made active again (staff, in the admin)."""

    user_id: int


E = TypeVar("E")
_handlers: dict[type, list[Callable[[Any], None]]] = defaultdict(list)


def subscribe(event_type: type[E], handler: Callable[[E], None]) -> None:
    """Register `handler` for `event_type`; registering the same handler twice keeps one (ready() may run twice)."""
    if handler not in _handlers[event_type]:
        _handlers[event_type].append(handler)


def unsubscribe(event_type: type[E], handler: Callable[[E], None]) -> None:
    if handler in _handlers[event_type]:
        _handlers[event_type].remove(handler)


def announce(event: object) -> None:
    """Call every handler of the event's type. A failing handler is logged and never breaks the announcer."""
    for handler in list(_handlers[type(event)]):
        try:
            handler(event)
        except Exception:
            logger.exception("event_handler_failed", event=type(event).__name__, handler=handler.__qualname__)
