from __future__ import annotations

import math
from datetime import UTC

from rest_framework import serializers

from alerts.models import (
    ALERT_EDITABLE_FIELDS,
    THRESHOLD_KINDS,
    Alert,
    AlertKind,
    Channel,
    NotificationChannel,
)
from alerts.outbound import DeliveryError, apprise_check, check_url
from alerts.rules import event_value_shown
from market.api.fields import QuerySerializer, symbol_from_path
from market.sources import price_tick_for_symbol
from market.symbols import InvalidSymbol
from tradingdash.inputs import StrictInputSerializer
from watchlists.selectors import symbols_unknown

SIGNAL_TYPES = ["BUY", "SELL", "HOLD"]


class AlertInputSerializer(StrictInputSerializer):
    """An alert as sent by the client; `validate` refuses the combinations that could never fire sensibly."""

    symbol = serializers.CharField(max_length=40)
    kind = serializers.ChoiceField(choices=AlertKind.choices)
    threshold = serializers.FloatField(required=False, allow_null=True, default=None)
    signal_type = serializers.ChoiceField(choices=SIGNAL_TYPES, required=False, allow_null=True, default=None)
    channels = serializers.ListField(child=serializers.ChoiceField(choices=Channel.choices), min_length=1)
    active = serializers.BooleanField(default=True)
    cooldown_minutes = serializers.IntegerField(min_value=0, max_value=7 * 24 * 60, default=60)

    def validate_symbol(self, value: str) -> str:
        try:
            symbol = symbol_from_path(value.strip())
        except InvalidSymbol as exc:
            raise serializers.ValidationError(str(exc)) from exc
        if symbols_unknown(symbols=[symbol]):
            raise serializers.ValidationError(f"Unknown symbol {symbol!r}.")
        return symbol

    def validate_threshold(self, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise serializers.ValidationError("A threshold must be a finite number.")
        return value

    def validate_channels(self, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Each channel at most once.")
        user = self.context["request"].user
        for kind in (Channel.WEBHOOK, Channel.APPRISE):
            if kind in value and not NotificationChannel.objects.filter(user=user, kind=kind).exists():
                raise serializers.ValidationError(
                    f"You have no {kind} channel: add one with POST /api/notifications/channels first."
                )
        return value

    def validate(self, attrs: dict) -> dict:
        current = {}
        if self.instance is not None:
            current = {
                "kind": self.instance.kind,
                "threshold": self.instance.threshold,
                "signal_type": self.instance.signal_type or None,
            }
        merged = {**current, **attrs}
        kind, threshold, signal_type = merged["kind"], merged.get("threshold"), merged.get("signal_type")
        errors = {}
        if kind in THRESHOLD_KINDS:
            if threshold is None:
                errors["threshold"] = [f"A {kind} alert needs a threshold."]
            elif kind.startswith("price") and threshold <= 0:
                errors["threshold"] = ["A price threshold must be positive."]
            if signal_type is not None:
                errors["signal_type"] = [f"Only signal alerts take a signal_type, not {kind}."]
        else:
            if threshold is not None:
                errors["threshold"] = [f"A {kind} alert takes no threshold."]
            if kind == AlertKind.SIGNAL and signal_type is None:
                errors["signal_type"] = ["A signal alert needs a signal_type (BUY, SELL or HOLD)."]
            if kind == AlertKind.PREDICTION_MISS and signal_type is not None:
                errors["signal_type"] = ["Only signal alerts take a signal_type."]
        if errors:
            raise serializers.ValidationError(errors)
        if "signal_type" in attrs or "kind" in attrs:
            attrs["signal_type"] = signal_type or ""
        if "kind" in attrs and kind not in THRESHOLD_KINDS:
            attrs["threshold"] = None
        return attrs


class AlertSerializer(serializers.ModelSerializer):
    signal_type = serializers.SerializerMethodField()
    channels = serializers.ListField(child=serializers.ChoiceField(choices=Channel.choices))
    last_fired_at = serializers.DateTimeField(
        source="last_event_at",  # alerts.selectors.alerts_of; a new alert has none
        default=None,
        read_only=True,
        allow_null=True,
        # Rendered in UTC so the API's renderer shows it in the clock of the alert's exchange (not TIME_ZONE's).
        default_timezone=UTC,
        help_text="When the alert last fired (its newest event), null if never.",
    )

    class Meta:
        model = Alert
        fields = ["id", *ALERT_EDITABLE_FIELDS, "last_fired_at"]

    def get_signal_type(self, obj: Alert) -> str | None:
        return obj.signal_type or None


class EventQuerySerializer(QuerySerializer):
    limit = serializers.IntegerField(min_value=1, max_value=500, default=50)


class DeliverySerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    channel_id = serializers.IntegerField(allow_null=True)
    state = serializers.ChoiceField(choices=["pending", "delivered", "failed"])
    attempts = serializers.IntegerField()
    last_error = serializers.CharField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True, default_timezone=UTC)


class AlertEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    alert_id = serializers.IntegerField(allow_null=True)
    symbol = serializers.CharField()
    kind = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    threshold = serializers.FloatField(allow_null=True)
    message = serializers.CharField()
    details = serializers.DictField()
    fired_at = serializers.DateTimeField(default_timezone=UTC)  # shown in the symbol's exchange clock
    deliveries = DeliverySerializer(many=True)

    def to_representation(self, instance):
        """`value` read as what it holds (the renderer rounds by key, and `value` is a price or a percentage
        by the event's kind): change alerts' a percentage, the others' a traded price at the symbol's tick."""
        data = super().to_representation(instance)
        tick = price_tick_for_symbol(data["symbol"])
        data["value"] = event_value_shown(kind=data["kind"], value=data["value"], tick=tick)
        return data


class ChannelInputSerializer(StrictInputSerializer):
    kind = serializers.ChoiceField(choices=NotificationChannel.Kind.choices)
    url = serializers.CharField(max_length=2000, write_only=True)
    secret = serializers.CharField(min_length=16, max_length=200, required=False, write_only=True)

    def validate(self, attrs: dict) -> dict:
        kind, url, secret = attrs["kind"], attrs["url"].strip(), attrs.get("secret", "")
        try:
            if kind == NotificationChannel.Kind.WEBHOOK:
                check_url(url)
            else:
                apprise_check(url)
        except DeliveryError as exc:
            raise serializers.ValidationError({"url": [str(exc)]}) from exc
        if kind == NotificationChannel.Kind.WEBHOOK and not secret:
            raise serializers.ValidationError(
                {"secret": ["A webhook needs a secret (16+ characters) to sign with."]}
            )
        if kind == NotificationChannel.Kind.APPRISE and secret:
            raise serializers.ValidationError({"secret": ["Apprise channels take no secret."]})
        return {"kind": kind, "url": url, "secret": secret}


class ChannelSerializer(serializers.ModelSerializer):
    url = serializers.CharField(source="masked_url")
    secret = serializers.CharField(source="masked_secret")

    class Meta:
        model = NotificationChannel
        fields = ["id", "kind", "url", "secret", "created_at"]


class ChannelTestSerializer(serializers.Serializer):
    delivered = serializers.BooleanField()
    error = serializers.CharField(allow_null=True)
