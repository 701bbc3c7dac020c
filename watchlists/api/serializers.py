from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from market.api.fields import symbols_from_texts
from tradingdash.inputs import StrictInputSerializer, TextField
from watchlists.models import Watchlist
from watchlists.selectors import symbols_unknown


class SymbolListField(serializers.ListField):
    """Symbols as users type them, normalised (RELIANCE → RELIANCE.NS), de-duplicated, in the catalogue."""

    def __init__(self, **kwargs):
        super().__init__(child=serializers.CharField(max_length=40), **kwargs)

    def to_internal_value(self, data) -> list[str]:
        raw = super().to_internal_value(data)
        limit = settings.WATCHLIST_MAX_SYMBOLS
        symbols = symbols_from_texts(raw)
        # The limit first: a list of 70,000 unknown symbols was one catalogue query and one error each (36 s).
        if len(symbols) > limit:
            raise serializers.ValidationError(f"At most {limit} symbols per watchlist.")
        unknown = symbols_unknown(symbols=symbols)
        if unknown:
            raise serializers.ValidationError([f"Unknown symbol {symbol!r}." for symbol in unknown])
        return symbols


class WatchlistInputSerializer(StrictInputSerializer):
    name = TextField(max_length=100)
    symbols = SymbolListField()

    def validate_name(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("This field may not be blank.")
        return value


class WatchlistSerializer(serializers.ModelSerializer):
    symbols = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = Watchlist
        fields = ["id", "name", "symbols", "created_at"]
