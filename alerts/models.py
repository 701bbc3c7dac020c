from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

from alerts.masking import mask_secret, mask_url


class AlertKind(models.TextChoices):
    PRICE_ABOVE = "price_above", "Price above"
    PRICE_BELOW = "price_below", "Price below"
    CHANGE_PCT_ABOVE = "change_pct_above", "Change % above"
    CHANGE_PCT_BELOW = "change_pct_below", "Change % below"
    SIGNAL = "signal", "New signal"
    PREDICTION_MISS = "prediction_miss", "Prediction outside its interval"


THRESHOLD_KINDS = frozenset(
    {AlertKind.PRICE_ABOVE, AlertKind.PRICE_BELOW, AlertKind.CHANGE_PCT_ABOVE, AlertKind.CHANGE_PCT_BELOW}
)


class Channel(models.TextChoices):
    STREAM = "stream", "Live stream"
    WEBHOOK = "webhook", "Webhook"
    APPRISE = "apprise", "Apprise"


class NotificationChannel(models.Model):
    """Where a user's alerts go besides the live stream: a signed webhook or any Apprise URL. `url` and `secret`
    are write-only in the API and masked everywhere they are shown."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        APPRISE = "apprise", "Apprise"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_channels"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    url = models.CharField(max_length=2000)
    secret = models.CharField(
        max_length=200, blank=True, help_text="HMAC-SHA256 key of a webhook's signature."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.masked_url}"

    @property
    def masked_url(self) -> str:
        return mask_url(self.url, show_host=self.kind == self.Kind.WEBHOOK)

    @property
    def masked_secret(self) -> str:
        return mask_secret(self.secret)


class Alert(models.Model):
    """A user's condition on one symbol and the channels to tell them on. Price and change alerts fire once per
    crossing: `armed` drops when one fires and comes back when the value goes back across the threshold.
    `armed`, `last_*` and `fired_count` belong to the evaluator: user and admin edits never write them (except
    re-arming on a new condition or a reactivation, which also moves `watching_since`: the bars observed before
    are not caught up on; and a new condition clears `last_fired_at`: the old firing's cooldown is not the new
    one's), so an edit made from a stale copy cannot roll back a firing."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alerts")
    symbol = models.CharField(max_length=20)
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    threshold = models.FloatField(null=True, blank=True)
    signal_type = models.CharField(max_length=4, blank=True, default="")
    channels = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    cooldown_minutes = models.PositiveIntegerField(default=60)
    armed = models.BooleanField(default=True)
    last_value = models.FloatField(null=True, blank=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    fired_count = models.PositiveIntegerField(default=0)
    last_observed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Time of the newest quote or bar evaluated: an older one arriving later is skipped.",
    )
    watching_since = models.DateTimeField(
        default=timezone.now,
        db_default=Now(),  # rows inserted by code that predates the column (a rolling deploy)
        help_text="Since when it has watched its condition: created, its condition changed, reactivated, or its "
        "user reactivated. Bars observed before are not caught up on (nobody was watching them).",
    )
    threshold_set_at = models.DateTimeField(
        default=timezone.now,
        help_text="When the threshold (or symbol) was set: a price threshold is in the share count of that "
        "day, scaled by the splits and bonus issues going ex since.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["symbol", "kind"], condition=models.Q(active=True), name="alerts_active")
        ]

    def __str__(self) -> str:
        return (
            f"{self.symbol} {self.kind} {self.threshold if self.threshold is not None else self.signal_type}"
        )


# What a user (API) or an operator (admin) may change; everything else on an alert is the evaluator's state.
ALERT_EDITABLE_FIELDS = (
    "symbol",
    "kind",
    "threshold",
    "signal_type",
    "channels",
    "active",
    "cooldown_minutes",
)
# A change of any of these is a new condition, which starts armed.
ALERT_CONDITION_FIELDS = ("symbol", "kind", "threshold")


class AlertEvent(models.Model):
    """One firing of an alert. `key` is unique, so a retried evaluation never fires (and notifies) twice."""

    key = models.CharField(max_length=120, unique=True)
    alert = models.ForeignKey(Alert, null=True, on_delete=models.SET_NULL, related_name="events")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_events")
    symbol = models.CharField(max_length=20)
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    value = models.FloatField(null=True)
    threshold = models.FloatField(null=True)
    message = models.CharField(max_length=300)
    details = models.JSONField(default=dict, blank=True)
    fired_at = models.DateTimeField()

    class Meta:
        ordering = ["-fired_at", "-id"]
        indexes = [models.Index(fields=["user", "-fired_at"])]

    def __str__(self) -> str:
        return self.message

    def as_dict(self) -> dict:
        """What the event says, as every channel and the events list show it (times stay datetimes)."""
        return {
            "id": self.pk,
            "alert_id": self.alert_id,
            "symbol": self.symbol,
            "kind": self.kind,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
            "details": self.details,
            "fired_at": self.fired_at,
        }


class AlertDelivery(models.Model):
    """The state of one event on one channel: pending (queued or waiting to retry), delivered or failed.
    `attempts` numbers the tries: a task carries the number it expects, so a second copy of it (the broker's
    redelivery, the sweeper's re-queue) finds it taken and sends nothing. `next_attempt_at` is when the next
    try is due: a pending delivery long past it lost its task, and the sweeper queues it again."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    event = models.ForeignKey(AlertEvent, on_delete=models.CASCADE, related_name="deliveries")
    channel_kind = models.CharField(max_length=10, choices=Channel.choices)
    channel = models.ForeignKey(NotificationChannel, null=True, blank=True, on_delete=models.SET_NULL)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=models.Q(state="pending"), name="alerts_due")
        ]
        verbose_name_plural = "alert deliveries"

    def __str__(self) -> str:
        return f"{self.event_id} {self.channel_kind} {self.state}"
