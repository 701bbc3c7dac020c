from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

import structlog
from django.conf import settings
from django.db.models import DateTimeField, Max, Min, Prefetch, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from alerts.models import THRESHOLD_KINDS, Alert, AlertDelivery, AlertEvent, NotificationChannel
from alerts.prices import DailyCloses, PriceObservation, StoredBar, bar_price
from market.adjust import Action, split_ratio_between
from market.calendar import ExchangeCalendar, UnknownExchange
from market.models import MarketData
from market.selectors import corporate_actions
from market.sources import calendar_for_symbol, time_zone_for_symbol
from market.timeframes import Timeframe

logger = structlog.get_logger(__name__)


def latest_price(*, symbol: str, timeframe: str) -> PriceObservation | None:
    """The last stored bar of the timeframe as price alerts read it (alerts.prices.bar_price)."""
    rows = _bar_rows(symbol=symbol, timeframe=timeframe, since=None, limit=1)
    return _bar_prices(symbol=symbol, timeframe=timeframe, rows=rows)[-1] if rows else None


def bars_to_evaluate(*, symbol: str, timeframe: str) -> list[PriceObservation]:
    """The stored bars of the timeframe that the symbol's active price and change alerts have not evaluated yet,
    oldest first, as they read them (alerts.prices.bar_price): those observed since the earliest point one of
    them is waiting from (its newest value seen, or when its condition was set if later), and always the newest
    bar (an alert that has seen nothing starts there). At most ALERT_EVALUATE_MAX_BARS, the newest, the cut
    logged: a years-long backfill must not make one evaluation run for minutes. A few queries, however many."""
    since = (
        Alert.objects.filter(
            symbol=symbol,
            kind__in=list(THRESHOLD_KINDS),
            active=True,
            user__is_active=True,
            last_observed_at__isnull=False,
        )
        .aggregate(since=Min(Greatest("last_observed_at", "threshold_set_at", "watching_since")))
        .get("since")
    )
    if since is None:
        return [latest] if (latest := latest_price(symbol=symbol, timeframe=timeframe)) else []
    limit = settings.ALERT_EVALUATE_MAX_BARS
    rows = _bar_rows(symbol=symbol, timeframe=timeframe, since=since, limit=limit + 1)
    if not rows:  # every alert waits from after the newest bar: that one still goes to those that saw nothing
        return [latest] if (latest := latest_price(symbol=symbol, timeframe=timeframe)) else []
    bars = _bar_prices(symbol=symbol, timeframe=timeframe, rows=rows)
    bars = [*[bar for bar in bars[:-1] if bar.observed_at >= since], *bars[-1:]]
    if len(bars) > limit:
        logger.warning(
            "alert_bars_capped",
            symbol=symbol,
            timeframe=timeframe,
            since=since.isoformat(),
            kept=limit,
            first_kept=bars[-limit].observed_at.isoformat(),
        )
        bars = bars[-limit:]
    return bars


def _bar_rows(*, symbol: str, timeframe: str, since: datetime | None, limit: int) -> list[StoredBar]:
    """The newest `limit` bars, oldest first; with `since`, only those that may be observed since then (a bar is
    observed at its end at the latest)."""
    rows = MarketData.objects.filter(symbol=symbol, timeframe=timeframe)
    if since is not None:
        rows = rows.filter(timestamp__gte=since - Timeframe(timeframe).spec.bar)
    fields = ("timestamp", "close_price", "final", "updated_at", "source")
    newest = rows.order_by("-timestamp").values_list(*fields)[:limit]
    return [
        StoredBar(timestamp=timestamp, close=close, final=final, stored_at=stored_at, source=source)
        for timestamp, close, final, stored_at, source in reversed(newest)
    ]


def _bar_prices(*, symbol: str, timeframe: str, rows: list[StoredBar]) -> list[PriceObservation]:
    """Each bar's price and change, from one read of the daily closes they need (from the newest that opened at
    least a day before the first bar: its previous close)."""
    length = Timeframe(timeframe).spec.bar
    first, last = rows[0].timestamp, rows[-1].timestamp
    days = MarketData.objects.filter(symbol=symbol, timeframe=Timeframe.D1.value)
    previous = (
        days.filter(timestamp__lte=first - timedelta(days=1)).order_by("-timestamp").values("timestamp")
    )
    daily = DailyCloses(
        days.filter(
            timestamp__gte=Coalesce(
                Subquery(previous[:1]), Value(first - timedelta(days=1), output_field=DateTimeField())
            ),
            timestamp__lt=last + length,
        )
        .order_by("timestamp")
        .values_list("timestamp", "close_price")
    )
    actions = corporate_actions(symbol=symbol, adjust="splits")
    tz, now = time_zone_for_symbol(symbol), timezone.now()
    return [bar_price(row, length=length, daily=daily, actions=actions, tz=tz, now=now) for row in rows]


@dataclass(frozen=True, kw_only=True)
class ThresholdSplits:
    """A symbol's splits and bonus issues and the clock they are dated in, read once for many thresholds."""

    actions: list[Action]
    tz: tzinfo | None = None
    calendar: ExchangeCalendar | None = None  # None: a catalogue row naming no known exchange


def threshold_splits(*, symbol: str) -> ThresholdSplits:
    actions = corporate_actions(symbol=symbol, adjust="splits")
    if not actions:
        return ThresholdSplits(actions=[])
    try:
        calendar = calendar_for_symbol(symbol)
    except UnknownExchange:  # dated in its zone, opening at midnight
        return ThresholdSplits(actions=actions, tz=time_zone_for_symbol(symbol))
    return ThresholdSplits(actions=actions, tz=calendar.tz, calendar=calendar)


def threshold_split_ratio(
    *, symbol: str, set_at: datetime, observed_at: datetime, splits: ThresholdSplits | None = None
) -> float:
    """What a price threshold set at `set_at` is divided by to compare it with a price observed at `observed_at`:
    the ratio of the splits and bonus issues going ex after the prices it was set against, through the trading
    day of the observed price (1.0 when none did; below 1 for a reverse split). Set before a day's session
    opened, it was set against the day before's prices. A bar or quote is observed as of its end or of when it
    was fetched within its day (latest_price, alerts.receivers.quote_observed_at), so the instant before
    `observed_at` lies in its trading day. `splits`: the symbol's, read once by a caller with many to compare."""
    splits = splits or threshold_splits(symbol=symbol)
    if not splits.actions:
        return 1.0
    calendar, tz = splits.calendar, splits.tz
    set_local = set_at.astimezone(tz)
    set_on = set_local.date()
    if calendar is not None and set_local.time() < calendar.special_opens.get(set_on, calendar.open):
        set_on -= timedelta(days=1)
    observed_on = (observed_at - timedelta(microseconds=1)).astimezone(tz).date()
    return split_ratio_between(splits.actions, after=set_on, through=observed_on)


def alerts_of(*, user) -> QuerySet[Alert]:
    """The user's alerts, each with `last_event_at`: when it last fired (its newest event). The model's
    `last_fired_at` is the time of the value that fired it (the cooldown runs on it): Friday's bar for a
    crossing found on Monday."""
    return Alert.objects.filter(user=user).annotate(last_event_at=Max("events__fired_at"))


def alert_with_condition(
    *, user, symbol: str, kind: str, threshold: float | None, signal_type: str, exclude: int | None = None
) -> int | None:
    """The id of the user's alert with this very condition, if any: two would fire (and notify) twice for one
    crossing, one signal, one missed prediction."""
    return (
        Alert.objects.filter(
            user=user, symbol=symbol, kind=kind, threshold=threshold, signal_type=signal_type
        )
        .exclude(pk=exclude)
        .values_list("pk", flat=True)
        .first()
    )


def channels_of(*, user) -> QuerySet[NotificationChannel]:
    return NotificationChannel.objects.filter(user=user)


def events_list(*, user, limit: int) -> list[dict]:
    """The user's latest firings, newest first, each with its per-channel delivery state (two queries)."""
    events = AlertEvent.objects.filter(user=user).prefetch_related(
        Prefetch("deliveries", queryset=AlertDelivery.objects.order_by("id"))
    )[:limit]
    return [
        {
            **event.as_dict(),
            "deliveries": [
                {
                    "channel": delivery.channel_kind,
                    "channel_id": delivery.channel_id,
                    "state": delivery.state,
                    "attempts": delivery.attempts,
                    "last_error": delivery.last_error or None,
                    "delivered_at": delivery.delivered_at,
                }
                for delivery in event.deliveries.all()
            ],
        }
        for event in events
    ]


def alerted_symbols() -> set[str]:
    """Symbols of active price and change alerts: the live quote refresher keeps them fresh while their exchange
    is open, so such an alert is checked on live quotes, not only on the bars the syncs store."""
    return set(
        Alert.objects.filter(active=True, kind__in=THRESHOLD_KINDS)
        .values_list("symbol", flat=True)
        .distinct()
    )
