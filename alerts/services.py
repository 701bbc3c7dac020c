"""Alert writes: evaluating alerts when data arrives, firing them once, and delivering each firing per channel."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from alerts.models import (
    ALERT_CONDITION_FIELDS,
    ALERT_EDITABLE_FIELDS,
    THRESHOLD_KINDS,
    Alert,
    AlertDelivery,
    AlertEvent,
    AlertKind,
    Channel,
    NotificationChannel,
)
from alerts.outbound import (
    DeliveryError,
    DeliveryRefused,
    DeliveryTransient,
    apprise_destination,
    apprise_send,
    webhook_destination,
    webhook_post,
)
from alerts.prices import PriceObservation
from alerts.rules import event_value_shown, in_cooldown, threshold_transition
from alerts.selectors import ThresholdSplits, alert_with_condition, threshold_split_ratio, threshold_splits
from market.sources import price_tick_for_symbol

logger = structlog.get_logger(__name__)
PRICE_KINDS = (AlertKind.PRICE_ABOVE, AlertKind.PRICE_BELOW)

# --- Alerts and channels


class AlertError(ValueError):
    """A write the rules refuse (too many alerts or channels, a duplicate); the API answers 400 with the message."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


def _lock_user(user) -> None:
    """Serialise one user's creations, so racing requests cannot both pass a count or duplicate check."""
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()


def alert_create(*, user, **fields) -> Alert:
    """A new alert; at most ALERT_MAX_PER_USER a user, and none with the condition of another of theirs."""
    with transaction.atomic():
        _lock_user(user)
        limit = settings.ALERT_MAX_PER_USER
        if Alert.objects.filter(user=user).count() >= limit:
            raise AlertError("non_field_errors", f"At most {limit} alerts per user.")
        condition = {name: fields.get(name) for name in ("symbol", "kind", "threshold")}
        same = alert_with_condition(user=user, signal_type=fields.get("signal_type") or "", **condition)
        if same is not None:
            raise AlertError("non_field_errors", f"Alert {same} already has this condition: edit it instead.")
        return Alert.objects.create(user=user, **fields)


def alert_update(*, alert: Alert, **fields) -> Alert:
    """Change what a user may change of an alert. The row is locked and re-read, and only the edited fields (and
    `armed`) are written, so an edit never rolls back a firing that happened since the caller loaded the alert.
    A new condition (symbol, kind or threshold different from the stored one) or a reactivation starts armed,
    from the newest value (no catching up on bars stored before): a crossing of the old condition says nothing of
    the new; a new condition is out of the old one's cooldown too.
    Sending the same condition back changes nothing.
    Raises Alert.DoesNotExist when the alert was deleted since the caller loaded it."""
    unknown = set(fields) - set(ALERT_EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"Not editable: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        _lock_user(alert.user)
        current = Alert.objects.select_for_update().get(pk=alert.pk)
        new_condition = any(
            name in fields and fields[name] != getattr(current, name) for name in ALERT_CONDITION_FIELDS
        )
        rearm = new_condition or (fields.get("active") is True and not current.active)
        other_symbol = "symbol" in fields and fields["symbol"] != current.symbol
        # A threshold (or the symbol it is a price of) entered now is in today's share count.
        reset = any(
            name in fields and fields[name] != getattr(current, name) for name in ("symbol", "threshold")
        )
        for name, value in fields.items():
            setattr(current, name, value)
        if new_condition or "signal_type" in fields:
            same = alert_with_condition(
                user=current.user,
                symbol=current.symbol,
                kind=current.kind,
                threshold=current.threshold,
                signal_type=current.signal_type,
                exclude=current.pk,
            )
            if same is not None:
                raise AlertError("non_field_errors", f"Alert {same} already has this condition.")
        update = [*fields, "updated_at"]
        if rearm:
            # It starts over: the bars observed while it was off, or while it watched another condition, are caught
            # up on by nobody (alerts_evaluate_bars). `last_observed_at` stays: a quote older than the newest value
            # seen, delivered late, is still superseded.
            current.armed, current.watching_since = True, timezone.now()
            update += ["armed", "watching_since"]
        if other_symbol:
            # The newest value seen was the old symbol's: it orders nothing of the new one's (another exchange's
            # clock), whose newest quote or bar it would skip as superseded.
            current.last_observed_at = None
            update.append("last_observed_at")
        if new_condition:
            # The cooldown is against paging again on the same threshold; the old condition's firing must not
            # swallow the first crossing of the one the user has just asked to be told of.
            current.last_fired_at = None
            update.append("last_fired_at")
        if reset:
            current.threshold_set_at = timezone.now()
            update.append("threshold_set_at")
        current.save(update_fields=update)
    return current


def alerts_watch_from_now(*, user_id: int) -> int:
    """The user's alerts watch their conditions from now (the user was reactivated): bars observed while nobody
    watched are not caught up on. Returns how many alerts."""
    return Alert.objects.filter(user_id=user_id).update(watching_since=timezone.now())


def channel_create(*, user, kind: str, url: str, secret: str = "") -> NotificationChannel:
    """A new channel; at most ALERT_MAX_CHANNELS a user, and never the same URL twice: every firing goes to each
    channel of its kind, so a second copy would notify twice (and a thousand, a thousand requests)."""
    with transaction.atomic():
        _lock_user(user)
        limit = settings.ALERT_MAX_CHANNELS
        if NotificationChannel.objects.filter(user=user).count() >= limit:
            raise AlertError("non_field_errors", f"At most {limit} notification channels per user.")
        if kind == NotificationChannel.Kind.WEBHOOK:
            url = webhook_destination(url)  # HTTPS://Example.COM/hook and https://example.com/hook are one
        # Apprise's own spelling of each: ntfy://NTFY.sh/topic/ and ntfy://ntfy.sh/topic are one too.
        destination = webhook_destination if kind == NotificationChannel.Kind.WEBHOOK else apprise_destination
        wanted = destination(url)
        same = NotificationChannel.objects.filter(user=user, kind=kind).values_list("pk", "url")
        for pk, stored in same:
            if stored == url or destination(stored) == wanted:
                raise AlertError("url", f"Channel {pk} already sends to this URL.")
        return NotificationChannel.objects.create(user=user, kind=kind, url=url, secret=secret)


# --- Evaluation (called by the tasks that the data events enqueue)


def alerts_evaluate_price(
    *,
    symbol: str,
    price: float | None,
    change_pct: float | None,
    observed_at: datetime | None = None,
    source: str | None = None,
    final: bool | None = None,
) -> list[int]:
    """Run the crossing state machine of the symbol's active price and change alerts on a value observed at
    `observed_at` (the quote's or bar's own time); the ids of the events fired. Each alert is locked while it is
    decided, so concurrent evaluations cannot both fire it, and a value older than the newest one the alert has
    seen is skipped: tasks run out of order on several workers, and a superseded price must not fire. A crossing
    is keyed by its ordinal and the time of the value that fired it, so evaluating the same value again never
    notifies twice (the firing disarmed the alert in the same transaction), and the cooldown runs on those times; the event itself fires (and its deliveries have ALERT_DELIVERY_MAX_AGE from)
    when it is evaluated: a quote of Friday's close evaluated on Monday fires on Monday, its time in the details.
    The details also say where the value came from (`source`; synthetic data says so in the message too) and,
    for a bar, whether it was final or still forming (`final`). Without `observed_at` the value is as of now and
    orders nothing."""
    observation = PriceObservation(
        price=price,
        change_pct=change_pct,
        observed_at=observed_at or timezone.now(),
        source=source,
        final=final,
    )
    return _evaluate(symbol=symbol, observations=[observation], timed=observed_at is not None)


def alerts_evaluate_bars(*, symbol: str, bars: list[PriceObservation]) -> list[int]:
    """alerts_evaluate_price over bars stored together (a backfill, a sync after an outage), oldest first, so
    each alert's state machine runs over them as it would have live: a crossing on a bar between the last one an
    alert saw and the newest fires (once, as of that bar), and back and across again fires again out of the
    cooldown. The bars before the newest go only to an alert that has seen a value before them, and only those
    observed after it and after the alert's condition was set (nobody is paged for a price from before they
    asked); one that has seen nothing starts from the newest, as a quote would. A retry re-reads each alert's
    newest value seen, so it finds those bars evaluated and fires nothing again."""
    if not bars:
        return []
    return _evaluate(symbol=symbol, observations=bars, timed=True)


def _value(kind: str, observation: PriceObservation) -> float | None:
    return observation.price if kind in PRICE_KINDS else observation.change_pct


def _evaluate(*, symbol: str, observations: list[PriceObservation], timed: bool) -> list[int]:
    newest = observations[-1]
    splits = None  # the symbol's splits, read once for every alert and bar (not per bar while Redis is down)
    kinds = [kind for kind in THRESHOLD_KINDS if any(_value(kind, seen) is not None for seen in observations)]
    fired = []
    for alert_id in _firing(Alert.objects.filter(symbol=symbol, kind__in=kinds)).values_list("id", flat=True):
        with transaction.atomic():
            alert = _locked(alert_id)
            if alert is None or alert.threshold is None:
                continue
            seen = alert.last_observed_at
            watched_from = max(alert.threshold_set_at, alert.watching_since)
            earlier = [
                observation
                for observation in observations[:-1]
                if seen is not None
                and observation.observed_at > seen
                and observation.observed_at >= watched_from
            ]
            update = set()
            for observation in [*earlier, newest]:
                value = _value(alert.kind, observation)
                if value is None:
                    continue
                if timed and alert.last_observed_at and observation.observed_at < alert.last_observed_at:
                    logger.info(
                        "alert_value_superseded",
                        alert_id=alert.pk,
                        observed_at=observation.observed_at.isoformat(),
                    )
                    continue
                if splits is None and alert.kind in PRICE_KINDS:
                    splits = threshold_splits(symbol=symbol)
                event = _step(alert, observation, value=value, timed=timed, update=update, splits=splits)
                if event is not None:
                    fired.append(event.pk)
            if update:
                alert.save(update_fields=[*update, "updated_at"])
    return fired


def _step(
    alert: Alert,
    observation: PriceObservation,
    *,
    value: float,
    timed: bool,
    update: set[str],
    splits: ThresholdSplits | None,
) -> AlertEvent | None:
    """One value through the alert's state machine (the alert locked by the caller); the event if it fired.
    `update` collects the fields changed."""
    observed = now = observation.observed_at
    threshold = alert.threshold
    if alert.kind in PRICE_KINDS:
        # The threshold is a price in the shares of the day it was set: a split since is no crossing.
        threshold /= threshold_split_ratio(
            symbol=alert.symbol, set_at=alert.threshold_set_at, observed_at=observed, splits=splits
        )
    step = threshold_transition(
        kind=alert.kind,
        threshold=threshold,
        armed=alert.armed,
        value=value,
        last_fired_at=alert.last_fired_at,
        cooldown_minutes=alert.cooldown_minutes,
        now=now,
    )
    alert.armed, alert.last_value = step.armed, value
    update.update(("armed", "last_value"))
    if timed:
        alert.last_observed_at = observed
        update.add("last_observed_at")
    if not step.fire:
        return None
    event = _fire(
        alert,
        # The firing's ordinal: a retry finds the alert disarmed by the committed firing, and a new
        # condition (an edit re-arms) crossed by the same bar is a new firing, not the old one's key.
        key=f"alert:{alert.pk}:crossing:{alert.fired_count + 1}:{observed.isoformat()}",
        value=value,
        threshold=threshold,
        message=_threshold_message(alert, value, threshold=threshold, source=observation.source),
        details={
            "price": observation.price,
            "change_pct": observation.change_pct,
            "observed_at": observed.isoformat(),
            "source": observation.source,
            "final": observation.final,
            "threshold_as_set": alert.threshold,
        },
        now=now,
    )
    if event is not None:
        update.update(("last_fired_at", "fired_count"))
    return event


def alerts_evaluate_signal(*, signal_id: int) -> list[int]:
    """Fire the `signal` alerts of a new signal's symbol and type (once per signal and alert)."""
    from signals.models import TradingSignal

    signal = TradingSignal.objects.filter(pk=signal_id).first()
    if signal is None:
        return []
    from signals.selectors import signal_row

    alerts = Alert.objects.filter(symbol=signal.symbol, kind=AlertKind.SIGNAL, signal_type=signal.signal_type)
    row = signal_row(signal.pk)
    source = row["source"] if row is not None else None  # the provider of the bar it was made on
    message = (
        f"{signal.symbol}: new {signal.signal_type} signal ({signal.timeframe}, strength {signal.strength:.2f})"
        f"{_synthetic_note(source)}"
    )
    details = {
        "source": source,
        "signal_id": signal.pk,
        "signal_type": signal.signal_type,
        "timeframe": signal.timeframe,
        "strength": signal.strength,
        "entry_price": signal.entry_price,
        "price_target": signal.price_target,
        "stop_loss": signal.stop_loss,
    }
    return _fire_each(
        alerts, key=f"signal:{signal.pk}", value=signal.entry_price, message=message, details=details
    )


def alerts_evaluate_prediction(*, prediction_id: int) -> list[int]:
    """Fire the `prediction_miss` alerts of a scored prediction's symbol when it was realized outside its 80%
    interval (once per prediction and alert). A replayed one (a backfill's, made afterwards as of a past bar)
    was never a forecast anyone was given: its miss is track record, not news."""
    from predictions.models import Prediction

    prediction = Prediction.objects.filter(pk=prediction_id).first()
    if prediction is None or prediction.replayed or prediction.within_interval is not False:
        return []
    alerts = Alert.objects.filter(symbol=prediction.symbol, kind=AlertKind.PREDICTION_MISS)
    if prediction.requested_by_id is not None:
        # A user's own prediction is theirs alone: its price and interval go to nobody else's alerts.
        alerts = alerts.filter(user_id=prediction.requested_by_id)
    message = (
        f"{prediction.symbol}: {prediction.model_used} predicted {prediction.predicted_price:.2f} "
        f"({prediction.lower_bound:.2f}–{prediction.upper_bound:.2f}), realized {prediction.realized_price:.2f}"
        f"{_synthetic_note(prediction.source)}"
    )
    details = {
        "source": prediction.source or None,  # the provider of the bar it was made on
        "prediction_id": prediction.pk,
        "timeframe": prediction.timeframe,
        "model": prediction.model_used,
        "predicted_price": prediction.predicted_price,
        "lower_bound": prediction.lower_bound,
        "upper_bound": prediction.upper_bound,
        "target_time": prediction.target_time.isoformat(),
    }
    return _fire_each(
        alerts,
        key=f"prediction:{prediction.pk}",
        value=prediction.realized_price,
        message=message,
        details=details,
    )


def _firing(alerts):
    """The alerts that may fire: active, of an active user (a deactivated account is told nothing)."""
    return alerts.filter(active=True, user__is_active=True)


def _locked(alert_id: int) -> Alert | None:
    """The alert, locked and re-read, if it may still fire (it may have been deactivated since it was listed)."""
    return _firing(Alert.objects.select_for_update(of=("self",))).filter(pk=alert_id).first()


def _fire_each(alerts, *, key: str, value: float | None, message: str, details: dict) -> list[int]:
    now = timezone.now()
    fired = []
    for alert_id in _firing(alerts).values_list("id", flat=True):
        with transaction.atomic():
            alert = _locked(alert_id)
            if alert is None:
                continue
            if in_cooldown(
                last_fired_at=alert.last_fired_at, cooldown_minutes=alert.cooldown_minutes, now=now
            ):
                continue
            event = _fire(
                alert, key=f"alert:{alert.pk}:{key}", value=value, message=message, details=details, now=now
            )
            if event is not None:
                alert.save(update_fields=["last_fired_at", "fired_count", "updated_at"])
                fired.append(event.pk)
    return fired


def _threshold_message(alert: Alert, value: float, *, threshold: float, source: str | None) -> str:
    what = "price" if alert.kind.startswith("price") else "change"
    unit = "%" if what == "change" else ""
    side = "above" if alert.kind.endswith("_above") else "below"
    adjusted = ""
    if not math.isclose(threshold, alert.threshold):
        adjusted = f" ({alert.threshold:g} as set, before a split or bonus issue)"
    return f"{alert.symbol}: {what} {value:.2f}{unit} is {side} {threshold:g}{unit}{adjusted}{_synthetic_note(source)}"


def _synthetic_note(source: str | None) -> str:
    """The message is all an Apprise channel shows: demo data must never read as the market's."""
    return " (synthetic data, not market prices)" if source == "synthetic" else ""


def _fire(
    alert: Alert,
    *,
    key: str,
    value,
    message: str,
    details: dict,
    now: datetime,
    threshold: float | None = None,
) -> AlertEvent | None:
    """Store the firing under its unique key and queue its deliveries after commit; None when that key has fired
    already (a retried task), so nobody is notified twice. Runs inside the caller's transaction. The event fires
    now; `now` is the time of the value that fired it, from which the alert's cooldown runs. `threshold`: the one
    the value was compared with, when not the alert's own (a price threshold scaled for a split since it was set)."""
    try:
        with transaction.atomic():
            event = AlertEvent.objects.create(
                key=key,
                alert=alert,
                user_id=alert.user_id,
                symbol=alert.symbol,
                kind=alert.kind,
                value=value,
                threshold=alert.threshold if threshold is None else threshold,
                message=message,
                details=details,
                fired_at=timezone.now(),
            )
    except IntegrityError:
        logger.info("alert_already_fired", alert_id=alert.pk, key=key)
        return None
    alert.last_fired_at = now
    alert.fired_count += 1
    deliveries = []
    for kind in alert.channels:
        if kind == Channel.STREAM:
            deliveries.append(AlertDelivery(event=event, channel_kind=kind))
            continue
        channels = list(NotificationChannel.objects.filter(user_id=alert.user_id, kind=kind))
        if not channels:
            # Its channels were deleted since the alert chose the kind: say so on the event, not nothing at all.
            missing = f"No {kind} channel to send to (deleted?): add one, or take {kind} off the alert."
            deliveries.append(
                AlertDelivery(
                    event=event, channel_kind=kind, state=AlertDelivery.State.FAILED, last_error=missing
                )
            )
        for channel in channels:
            deliveries.append(AlertDelivery(event=event, channel_kind=kind, channel=channel))
    AlertDelivery.objects.bulk_create(deliveries)
    logger.info("alert_fired", alert_id=alert.pk, symbol=alert.symbol, kind=alert.kind, value=value)
    from alerts.tasks import deliver

    for delivery in deliveries:
        if delivery.state == AlertDelivery.State.PENDING:
            transaction.on_commit(lambda pk=delivery.pk: deliver.delay(pk, 0), robust=True)
    return event


# --- Delivery


def event_payload(event: AlertEvent) -> dict:
    """What every channel receives (the stream adds `"type": "alert"`)."""
    return {**event.as_dict(), "fired_at": event.fired_at.isoformat()}


@dataclass(frozen=True, kw_only=True)
class Attempt:
    state: str
    retry_in: int | None = None
    attempts: int = 0  # tries made so far: what the retry's task expects


def _send(delivery: AlertDelivery) -> None:
    event = delivery.event
    if not event.user.is_active:
        raise DeliveryRefused("The user is deactivated: nothing is sent to them.")
    payload = event_payload(event)
    if delivery.channel_kind == Channel.STREAM:
        from stream.publish import publish_to_user

        try:
            tick = price_tick_for_symbol(event.symbol)
            shown = event_value_shown(kind=event.kind, value=event.value, tick=tick)
            publish_to_user(event.user_id, {"type": "alert", **payload, "value": shown}, must_send=True)
        except Exception as exc:  # the channel layer (Redis) is a boundary: any failure of it is transient
            raise DeliveryTransient(f"Stream publish failed: {type(exc).__name__}: {exc}"[:400]) from exc
        return
    channel = delivery.channel
    if channel is None:
        raise DeliveryRefused("The channel was deleted.")
    if channel.kind == NotificationChannel.Kind.WEBHOOK:
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        webhook_post(url=channel.url, secret=channel.secret, event_id=str(event.pk), body=body)
    else:
        apprise_send(url=channel.url, title=f"tradingdash alert: {event.symbol}", body=event.message)


def retry_delay(attempts: int) -> int:
    """Exponential backoff: base, 2×base, 4×base… capped (seconds)."""
    base, cap = settings.ALERT_DELIVERY_RETRY_BACKOFF, settings.ALERT_DELIVERY_RETRY_BACKOFF_MAX
    return min(cap, base * 2 ** max(0, attempts - 1))


def delivery_attempt(*, delivery_id: int, attempt: int | None = None) -> Attempt:
    """Try one delivery once and record the outcome. Delivered or failed ones are left alone, and so is a pending
    one whose try number `attempt` (the tries made before it) was taken already: a copy of a task (the broker
    redelivers a retry's message held past its visibility timeout; the sweeper re-queues one it thinks lost)
    sends nothing and starts no second chain of retries. Transient errors ask for a retry until
    ALERT_DELIVERY_MAX_AGE after the firing."""
    with transaction.atomic():
        delivery = (
            AlertDelivery.objects.select_for_update(of=("self",))
            .select_related("event__user", "event__alert", "channel")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.state != AlertDelivery.State.PENDING:
            return Attempt(state=delivery.state if delivery else "missing")
        if attempt is not None and attempt != delivery.attempts:
            logger.info("alert_delivery_duplicate", delivery_id=delivery.pk, attempt=attempt)
            return Attempt(state="duplicate", attempts=delivery.attempts)
        alert = delivery.event.alert
        if delivery.attempts and (alert is None or not alert.active):
            # A retry for an alert its user has since turned off (or deleted): they asked for no more of it.
            delivery.state, delivery.last_error = (
                AlertDelivery.State.FAILED,
                "Not retried: the alert was turned off.",
            )
            delivery.save(update_fields=["state", "last_error", "updated_at"])
            logger.info("alert_delivery_dropped", delivery_id=delivery.pk, reason="alert turned off")
            return Attempt(state=delivery.state, attempts=delivery.attempts)
        delivery.attempts += 1
        try:
            _send(delivery)
        except DeliveryError as exc:
            delivery.last_error = str(exc)[:500]
            now = timezone.now()
            deadline = delivery.event.fired_at + timedelta(seconds=settings.ALERT_DELIVERY_MAX_AGE)
            delay = retry_delay(delivery.attempts)
            if exc.retryable and now + timedelta(seconds=delay) < deadline:
                delivery.next_attempt_at = now + timedelta(seconds=delay)
                delivery.save(update_fields=["attempts", "last_error", "next_attempt_at", "updated_at"])
                logger.warning(
                    "alert_delivery_retry", delivery_id=delivery.pk, error=delivery.last_error, retry_in=delay
                )
                return Attempt(state=delivery.state, retry_in=delay, attempts=delivery.attempts)
            delivery.state = AlertDelivery.State.FAILED
            delivery.save(update_fields=["attempts", "last_error", "state", "updated_at"])
            logger.warning("alert_delivery_failed", delivery_id=delivery.pk, error=delivery.last_error)
            return Attempt(state=delivery.state, attempts=delivery.attempts)
        delivery.state, delivery.delivered_at = AlertDelivery.State.DELIVERED, timezone.now()
        delivery.save(update_fields=["attempts", "state", "delivered_at", "updated_at"])
        return Attempt(state=delivery.state, attempts=delivery.attempts)


def deliveries_requeue_overdue(*, now: datetime | None = None) -> int:
    """Queue again the pending deliveries whose task was lost (the broker was down when the firing committed,
    Redis dropped the message, a retry's message expired): those ALERT_DELIVERY_OVERDUE past their due try.
    One past ALERT_DELIVERY_MAX_AGE after its firing fails, saying so. A task that was only late finds its try
    taken by the copy (or the copy finds it taken), so nothing is sent twice. The number queued."""
    from alerts.tasks import deliver

    now = now or timezone.now()
    overdue = AlertDelivery.objects.filter(
        state=AlertDelivery.State.PENDING,
        next_attempt_at__lte=now - timedelta(seconds=settings.ALERT_DELIVERY_OVERDUE),
    ).values_list("pk", "attempts", "event__fired_at")
    queued = 0
    for pk, attempts, fired_at in overdue.iterator():
        if now >= fired_at + timedelta(seconds=settings.ALERT_DELIVERY_MAX_AGE):
            AlertDelivery.objects.filter(pk=pk, state=AlertDelivery.State.PENDING, attempts=attempts).update(
                state=AlertDelivery.State.FAILED,
                last_error="Not delivered within ALERT_DELIVERY_MAX_AGE of the firing: its task was lost.",
                updated_at=now,
            )
            continue
        deliver.delay(pk, attempts)
        queued += 1
    if queued:
        logger.warning("alert_deliveries_requeued", count=queued)
    return queued


def channel_test(*, channel: NotificationChannel) -> dict:
    """Send a sample event to one channel now, once, and say how it went (nothing is stored)."""
    payload = {
        "id": "test",
        "alert_id": None,
        "symbol": "TEST",
        "kind": "test",
        "value": None,
        "threshold": None,
        "message": "tradingdash test notification",
        "details": {},
        "fired_at": timezone.now().isoformat(),
    }
    try:
        if channel.kind == NotificationChannel.Kind.WEBHOOK:
            body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
            webhook_post(url=channel.url, secret=channel.secret, event_id="test", body=body)
        else:
            apprise_send(url=channel.url, title="tradingdash test", body=payload["message"])
    except DeliveryError as exc:
        return {"delivered": False, "error": str(exc)[:500]}
    return {"delivered": True, "error": None}
