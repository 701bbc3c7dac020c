"""Input serializers of the market API, and output shapes for the OpenAPI schema (responses are plain dicts)."""

from __future__ import annotations

from rest_framework import serializers

from market.api.fields import InstantField, QuerySerializer, TimeframeField
from market.symbols import InvalidSymbol
from market.timeframes import Timeframe
from tradingdash.inputs import StrictInputSerializer


class HistoricalQuerySerializer(QuerySerializer):
    timeframe = TimeframeField(default=Timeframe.D1)
    start = InstantField(required=False)
    end = InstantField(
        required=False, end_of_day=True, help_text="Inclusive for a date; exclusive for a datetime."
    )
    limit = serializers.IntegerField(min_value=1, max_value=5000, default=500)

    def validate(self, attrs: dict) -> dict:
        start, end = attrs.get("start"), attrs.get("end")
        if start is not None and end is not None and start >= end:
            raise serializers.ValidationError({"start": ["start must be before end."]})
        return attrs


class SyncInputSerializer(StrictInputSerializer):
    timeframe = TimeframeField(default=Timeframe.D1)
    days = serializers.IntegerField(min_value=1, max_value=36500, required=False)

    def validate(self, attrs: dict) -> dict:
        lookback, days = attrs["timeframe"].spec.max_lookback, attrs.get("days")
        if days is not None and lookback is not None and days > lookback.days:
            message = (
                f"{attrs['timeframe'].value} candles are available for the last {lookback.days} days only"
            )
            raise serializers.ValidationError({"days": [message]})
        return attrs


class MultipleQuerySerializer(QuerySerializer):
    symbols = serializers.CharField(max_length=2000, help_text="Comma-separated symbols, at most 50.")

    def validate_symbols(self, value: str) -> list[str]:
        from django.conf import settings

        from market.api.fields import symbol_from_path

        raw = [part for part in (p.strip() for p in value.split(",")) if part]
        if not raw:
            raise serializers.ValidationError("Give at least one symbol.")
        limit = settings.MARKET_MULTIPLE_MAX_SYMBOLS
        if len(raw) > limit:
            raise serializers.ValidationError(f"At most {limit} symbols per request.")
        symbols, invalid = [], []
        for part in raw:
            try:
                symbol = symbol_from_path(part)
            except InvalidSymbol as exc:
                invalid.append(str(exc))
                continue
            if symbol not in symbols:
                symbols.append(symbol)
        if invalid:
            raise serializers.ValidationError(invalid)
        return symbols


class CandleSerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField()
    open = serializers.FloatField()
    high = serializers.FloatField()
    low = serializers.FloatField()
    close = serializers.FloatField()
    volume = serializers.IntegerField()


class HistoricalSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    source = serializers.CharField(allow_null=True)
    count = serializers.IntegerField()
    stale = serializers.BooleanField()
    candles = CandleSerializer(many=True)


class QuoteSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    price = serializers.FloatField()
    change = serializers.FloatField(allow_null=True)
    change_percent = serializers.FloatField(allow_null=True)
    open = serializers.FloatField()
    high = serializers.FloatField()
    low = serializers.FloatField()
    previous_close = serializers.FloatField(allow_null=True)
    volume = serializers.IntegerField()
    timestamp = serializers.DateTimeField()
    currency = serializers.CharField()
    market_status = serializers.ChoiceField(choices=["pre_open", "open", "closed"])
    source = serializers.CharField()
    cached = serializers.BooleanField()
    stale = serializers.BooleanField()


class MultipleSerializer(serializers.Serializer):
    quotes = QuoteSerializer(many=True)
    errors = serializers.DictField(child=serializers.CharField())


class SyncResultSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    inserted = serializers.IntegerField()
    updated = serializers.IntegerField()
    rejected = serializers.IntegerField()
    first = serializers.DateTimeField(allow_null=True)
    last = serializers.DateTimeField(allow_null=True)
    source = serializers.CharField()


class MarketStatusSerializer(serializers.Serializer):
    exchange = serializers.CharField()
    timezone = serializers.CharField()
    is_open = serializers.BooleanField()
    session = serializers.ChoiceField(choices=["pre_open", "open", "closed"])
    reason = serializers.CharField(allow_null=True)
    now = serializers.DateTimeField()
    next_open = serializers.DateTimeField()
    next_close = serializers.DateTimeField()


class InstrumentSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    name = serializers.CharField()
    exchange = serializers.CharField()
    currency = serializers.CharField()
    kind = serializers.CharField()
    active = serializers.BooleanField()
