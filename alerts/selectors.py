from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Max, Prefetch, QuerySet
from django.utils import timezone

from alerts.models import THRESHOLD_KINDS, Alert, AlertDelivery, AlertEvent, NotificationChannel
from market.adjust import split_ratio_between
from market.calendar import UnknownExchange
from market.models import MarketData
from market.selectors import corporate_actions, split_ratio_between_bars
from market.sources import calendar_for_symbol, time_zone_for_symbol
from market.timeframes import Timeframe


@dataclass(frozen=True, kw_only=True)
class LatestPrice:
    price: float
    change_pct: float | None
    observed_at: datetime  # when the close was the price: the bar's end, or when a forming bar was fetched
    source: str = ""  # the provider that wrote the bar (synthetic, csv, yfinance…)
    final: bool = True  # False: a forming bar, its close the price when fetched


def latest_price(*, symbol: str, timeframe: str) -> LatestPrice | None:
    """The last stored close of the timeframe and its change against the previous session's daily close (the
    newest daily bar that opened at least a day before the last bar's trading day: today's forming daily bar is
    not "previous"), divided by the ratio of any split or bonus going ex in between, so a split is no crash that
    fires alerts. The trading day of a weekly or monthly bar is that of its newest daily bar, not its open.
    A final bar's close was the price at its end; a forming (not final) bar's when it was stored, however late
    its evaluation runs (a late task must not pass an older price off as newer than a quote fetched since)."""
    spec_bar = Timeframe(timeframe).spec.bar
    last = (
        MarketData.objects.filter(symbol=symbol, timeframe=timeframe)
        .order_by("-timestamp")
        .values_list("timestamp", "close_price", "final", "updated_at", "source")
        .first()
    )
    if last is None:
        return None
    timestamp, price, final, stored_at, source = last
    trading_day = timestamp
    if spec_bar > Timeframe.D1.spec.bar:
        trading_day = (
            MarketData.objects.filter(
                symbol=symbol,
                timeframe=Timeframe.D1.value,
                timestamp__gte=timestamp,
                timestamp__lt=timestamp + spec_bar,
            )
            .order_by("-timestamp")
            .values_list("timestamp", flat=True)
            .first()
        ) or timestamp
    previous_bar = (
        MarketData.objects.filter(
            symbol=symbol, timeframe=Timeframe.D1.value, timestamp__lte=trading_day - timedelta(days=1)
        )
        .order_by("-timestamp")
        .values_list("timestamp", "close_price")
        .first()
    )
    change_pct = None
    if previous_bar is not None and previous_bar[1]:
        previous_at, previous = previous_bar
        previous /= split_ratio_between_bars(symbol=symbol, earlier=previous_at, later=timestamp)
        change_pct = (price / previous - 1) * 100
    observed_at = min(timestamp + spec_bar, timezone.now() if final else stored_at)
    return LatestPrice(
        price=price, change_pct=change_pct, observed_at=observed_at, source=source, final=final
    )


def threshold_split_ratio(*, symbol: str, set_at: datetime, observed_at: datetime) -> float:
    """What a price threshold set at `set_at` is divided by to compare it with a price observed at `observed_at`:
    the ratio of the splits and bonus issues going ex after the prices it was set against, through the trading
    day of the observed price (1.0 when none did; below 1 for a reverse split). Set before a day's session
    opened, it was set against the day before's prices. A bar or quote is observed as of its end or of when it
    was fetched within its day (latest_price, alerts.receivers.quote_observed_at), so the instant before
    `observed_at` lies in its trading day."""
    actions = corporate_actions(symbol=symbol, adjust="splits")
    if not actions:
        return 1.0
    try:
        calendar = calendar_for_symbol(symbol)
    except (
        UnknownExchange
    ):  # a catalogue row naming no known exchange: dated in its zone, opening at midnight
        tz, opens = time_zone_for_symbol(symbol), None
    else:
        tz, opens = calendar.tz, calendar.special_opens
    set_local = set_at.astimezone(tz)
    set_on = set_local.date()
    if opens is not None and set_local.time() < opens.get(set_on, calendar.open):
        set_on -= timedelta(days=1)
    observed_on = (observed_at - timedelta(microseconds=1)).astimezone(tz).date()
    return split_ratio_between(actions, after=set_on, through=observed_on)


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
