"""Input serializers of the market API, and output shapes for the OpenAPI schema (responses are plain dicts)."""

from __future__ import annotations

from datetime import UTC

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from market.adjust import ADJUSTMENTS
from market.api.fields import InstantField, QuerySerializer, TimeframeField
from market.calendar import EXCHANGES
from market.indicators import SUPPORTED, InvalidIndicator, parse_indicators
from market.timeframes import Timeframe
from tradingdash.inputs import StrictInputSerializer


class HistoricalQuerySerializer(QuerySerializer):
    timeframe = TimeframeField(
        derived=True,
        default=Timeframe.D1,
        help_text="One of 1m, 5m, 15m, 1H, 4H, 1D, 1W, 1M. 1W and 1M are built from daily bars, 4H (and 1H "
        "beyond the provider's lookback) from 15m or 5m bars: see `derived_from` in the response.",
    )
    start = InstantField(required=False, help_text="A trading day (exchange time) or a datetime with offset.")
    end = InstantField(
        required=False,
        end_of_day=True,
        help_text="A trading day (exchange time), included whole; or a datetime with offset, exclusive.",
    )
    limit = serializers.IntegerField(min_value=1, max_value=5000, default=500)
    order = serializers.ChoiceField(
        choices=["asc", "desc"],
        default="asc",
        help_text="Which end of [start, end) `limit` keeps: with a start, `asc` gives the first bars from start, "
        "`desc` the latest. Without a start, always the latest. Candles are listed in time order either way.",
    )
    format = serializers.ChoiceField(
        choices=["rows", "columns"],
        default="rows",
        help_text="`columns` gives `candles` as one array per field, times as UNIX seconds "
        "(`{time: [...], open: [...], ...}`), the shape charting libraries take.",
    )
    adjust = serializers.ChoiceField(
        choices=ADJUSTMENTS,
        default="splits",
        error_messages={"invalid_choice": f"adjust must be one of {', '.join(ADJUSTMENTS)}."},
        help_text="Corporate-action adjustment applied at read time (candles are stored as traded): `none`; "
        "`splits` (splits and bonus issues: no split day looks like a crash); `all` (also dividends and staff-"
        "entered factors such as a demerger's: a total-return series).",
    )

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

        from market.api.fields import symbols_from_texts

        raw = [part for part in (p.strip() for p in value.split(",")) if part]
        if not raw:
            raise serializers.ValidationError("Give at least one symbol.")
        limit = settings.MARKET_MULTIPLE_MAX_SYMBOLS
        if len(raw) > limit:
            raise serializers.ValidationError(f"At most {limit} symbols per request.")
        return symbols_from_texts(raw)


class CandleSerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField()
    open = serializers.FloatField()
    high = serializers.FloatField()
    low = serializers.FloatField()
    close = serializers.FloatField()
    volume = serializers.IntegerField()
    final = serializers.BooleanField(help_text="False while the bar was still forming when it was fetched.")
    date = serializers.DateField(required=False, help_text="Daily and weekly bars: the trading day.")


def _column(items: dict) -> dict:
    return {"type": "array", "items": items}


CANDLE_COLUMNS_SCHEMA = {
    "type": "object",
    "description": "format=columns: one array per field, times as UNIX seconds.",
    "properties": {
        "time": _column({"type": "integer"}),
        **{name: _column({"type": "number"}) for name in ("open", "high", "low", "close")},
        "volume": _column({"type": "integer"}),
        "final": _column({"type": "boolean"}),
        "date": _column({"type": "string", "format": "date"}),
    },
    "required": ["time", "open", "high", "low", "close", "volume", "final"],
}


@extend_schema_field(
    {"oneOf": [{"type": "array", "items": {"$ref": "#/components/schemas/Candle"}}, CANDLE_COLUMNS_SCHEMA]}
)
class CandlesField(serializers.JSONField):
    """Rows (the default) or, with format=columns, one array per field."""


class HistoricalSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    source = serializers.CharField(
        allow_null=True, help_text="Where the stored bars (or their parts) came from."
    )
    derived_from = serializers.CharField(
        allow_null=True,
        help_text="The stored timeframe the bars were built from (e.g. 1D for weeks), null for stored bars. A "
        "derived bar is final only when all its parts are and every session of its period that can exist for the "
        "series (from its listing or known history start) has one.",
    )
    adjust = serializers.ChoiceField(choices=ADJUSTMENTS, help_text="The adjustment applied.")
    series = serializers.ChoiceField(
        choices=["as-traded", "split-adjusted", "total-return"], help_text="The same, in words."
    )
    count = serializers.IntegerField()
    stale = serializers.BooleanField()
    candles = CandlesField()
    # Keeps the Candle component in the schema for CandlesField's $ref; never present in responses.
    row = CandleSerializer(required=False, help_text="Not sent: the shape of one row of `candles`.")


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
    stale_seconds = serializers.IntegerField(
        allow_null=True,
        help_text=(
            "With stale: how old the price is, in seconds: since the close of the stored bar it comes from (on its "
            "exchange's calendar), or since that bar was fetched when it was stored before its close."
        ),
    )


class MultipleSerializer(serializers.Serializer):
    quotes = QuoteSerializer(many=True)
    errors = serializers.DictField(child=serializers.CharField())


class SyncResultSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    inserted = serializers.IntegerField()
    updated = serializers.IntegerField(help_text="Stored candles whose values changed.")
    unchanged = serializers.IntegerField(help_text="Candles fetched again exactly as they were stored.")
    rejected = serializers.IntegerField()
    first = serializers.DateTimeField(allow_null=True)
    last = serializers.DateTimeField(allow_null=True)
    source = serializers.CharField()
    message = serializers.CharField(allow_null=True, help_text="Why nothing was stored, when nothing was.")
    off_session = serializers.IntegerField(
        help_text="Rows the provider sent for days or times that are not sessions of the exchange's calendar "
        "(a holiday, a weekend): not stored as bars."
    )


class MarketStatusQuerySerializer(QuerySerializer):
    exchange = serializers.ChoiceField(
        choices=EXCHANGES, default="NSE", help_text="Whose session to report (case-insensitive)."
    )

    def to_internal_value(self, data):
        if isinstance(data.get("exchange"), str):
            data = data.copy()
            data["exchange"] = data["exchange"].strip().upper()
        return super().to_internal_value(data)


class MarketStatusSerializer(serializers.Serializer):
    exchange = serializers.CharField()
    timezone = serializers.CharField()
    is_open = serializers.BooleanField()
    session = serializers.ChoiceField(choices=["pre_open", "open", "closed"])
    reason = serializers.CharField(allow_null=True)
    now = serializers.DateTimeField()
    next_open = serializers.DateTimeField()
    next_close = serializers.DateTimeField()
    special_session = serializers.CharField(
        allow_null=True, help_text="Today's special session or shortened day (MarketSession), if any."
    )


class InstrumentSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    name = serializers.CharField()
    exchange = serializers.CharField()
    currency = serializers.CharField()
    kind = serializers.CharField()
    active = serializers.BooleanField()


class QualityQuerySerializer(QuerySerializer):
    timeframe = TimeframeField(default=Timeframe.D1)
    include_resolved = serializers.BooleanField(default=False)


class DataIssueSerializer(serializers.Serializer):
    # Times in UTC: the API's renderer shows them in the symbol's exchange clock (not in TIME_ZONE, the admin's).
    id = serializers.IntegerField()
    kind = serializers.CharField()
    start = serializers.DateTimeField(default_timezone=UTC)
    end = serializers.DateTimeField(default_timezone=UTC)
    details = serializers.DictField()
    unavailable = serializers.BooleanField()
    resolved = serializers.BooleanField()
    detected_at = serializers.DateTimeField(default_timezone=UTC)
    checked_at = serializers.DateTimeField(default_timezone=UTC)
    resolved_at = serializers.DateTimeField(allow_null=True, default_timezone=UTC)


class QualityReportSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    checked_at = serializers.DateTimeField(
        allow_null=True, default_timezone=UTC, help_text="Last check; null if never checked."
    )
    open = serializers.DictField(child=serializers.IntegerField(), help_text="Open findings by kind.")
    issues = DataIssueSerializer(many=True)


_INDICATOR = r"(?:sma|ema|rsi|atr|macd|bbands|vwap)(?::[0-9]{1,3}(?:\.[0-9]{1,2})?){0,3}"
_INDICATOR_NAMES = rf"^{_INDICATOR}(?:,{_INDICATOR}){{0,9}}$"


class IndicatorNamesValidator(RegexValidator):
    """The pattern the schema publishes, checked after parse_indicators, whose errors name the unknown
    indicator or the parameter out of range (the pattern alone could only say the text does not match)."""

    def __call__(self, value) -> None:
        try:
            parse_indicators(value)
        except InvalidIndicator as exc:
            raise serializers.ValidationError(str(exc)) from exc
        super().__call__(value)


class IndicatorsQuerySerializer(HistoricalQuerySerializer):
    names = serializers.CharField(
        max_length=300,
        help_text=f"Comma-separated, e.g. sma:50,ema:20,rsi:14,macd:12:26:9 ({SUPPORTED}).",
        validators=[
            IndicatorNamesValidator(
                _INDICATOR_NAMES, f"Names are kind[:number…], comma-separated; supported: {SUPPORTED}"
            )
        ],
    )
    format = None  # `order` as historical's (asc by default): the same query gives the same bars

    def validate_names(self, value: str) -> list:
        return parse_indicators(value)  # valid: IndicatorNamesValidator parsed it


class IndicatorsSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    derived_from = serializers.CharField(allow_null=True, help_text="As in the historical response.")
    count = serializers.IntegerField()
    stale = serializers.BooleanField()
    adjust = serializers.ChoiceField(choices=ADJUSTMENTS, help_text="The adjustment of the candles used.")
    indicators = serializers.ListField(child=serializers.CharField())
    rows = serializers.ListField(
        child=serializers.DictField(),
        help_text="One per candle of the same historical query: timestamp (and date for daily bars), then one "
        "value per indicator (an object for macd and bbands); null while warming up.",
    )
