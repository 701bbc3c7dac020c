"""Input fields shared by the market, predictions and signals APIs."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from market.symbols import InvalidSymbol, parse_symbol
from market.timeframes import Timeframe

TIMEFRAME_CHOICES = [*Timeframe.values, "1h", "1d", "1w"]
_MIN_YEAR, _MAX_YEAR = 1900, 2100


class TimeframeField(serializers.ChoiceField):
    """One of 1m, 5m, 15m, 1H, 1D, 1W (1h, 1d and 1w accepted too)."""

    def __init__(self, **kwargs):
        super().__init__(choices=TIMEFRAME_CHOICES, **kwargs)

    def to_internal_value(self, data) -> Timeframe:
        return Timeframe.parse(super().to_internal_value(data))

    def to_representation(self, value) -> str:
        return str(Timeframe.parse(str(value)).value)


class QuerySerializer(serializers.Serializer):
    """Input from a query string. DRF reads `?limit=` as an empty HTML form field, i.e. "not given", and
    silently applies the default; an API answers that the value is invalid instead."""

    def to_internal_value(self, data):
        blank = {name: ["This field may not be blank."] for name in self.fields if data.get(name) == ""}
        if blank:
            raise serializers.ValidationError(blank)
        return super().to_internal_value(data)


@extend_schema_field(
    {
        "anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}],
        "description": "A date (exchange-local midnight) or an RFC 3339 datetime with a UTC offset, years "
        f"{_MIN_YEAR}-{_MAX_YEAR}.",
    }
)
class InstantField(serializers.Field):
    """A date (YYYY-MM-DD, read as exchange-local midnight) or an ISO 8601 datetime with a zone."""

    default_error_messages = {
        "invalid": "Use a date (YYYY-MM-DD) or an ISO 8601 datetime with a UTC offset.",
        "naive": "A datetime needs a UTC offset, e.g. 2026-01-05T09:15:00+05:30.",
        "range": f"Dates must lie between {_MIN_YEAR} and {_MAX_YEAR}.",
    }

    def __init__(self, *, end_of_day: bool = False, **kwargs):
        self.end_of_day = end_of_day
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> datetime:
        if not isinstance(data, str) or len(data) > 40:
            self.fail("invalid")
        try:
            parsed_date = parse_date(data)
            parsed = parse_datetime(data) if parsed_date is None else None
        except ValueError:
            self.fail("invalid")
        if parsed_date is not None:
            if not _MIN_YEAR <= parsed_date.year <= _MAX_YEAR:
                self.fail("range")
            day = parsed_date + timedelta(days=1) if self.end_of_day else parsed_date
            return datetime.combine(day, time(), tzinfo=ZoneInfo(settings.EXCHANGE_TIME_ZONE))
        if parsed is None:
            self.fail("invalid")
        if parsed.tzinfo is None:
            self.fail("naive")
        if not _MIN_YEAR <= parsed.year <= _MAX_YEAR:
            self.fail("range")
        return parsed

    def to_representation(self, value):
        return value.isoformat() if isinstance(value, datetime | date) else value


# Symbols as the API takes them: parse_symbol's rules, and each dot-separated part starts with a letter or digit,
# no surrounding spaces, ASCII only; at most 20 characters, 17 for a bare name (it gets the .NS suffix).
# The OpenAPI schema publishes this pattern; market/tests/api/test_symbol_schema.py keeps the two in step.
_PART = "[A-Za-z0-9][A-Za-z0-9&-]*"
SYMBOL_PATTERN = rf"^(?:\^{_PART}(?:\.{_PART})*|{_PART}(?:\.{_PART})+|[A-Za-z0-9][A-Za-z0-9&-]{{0,16}})$"
SYMBOL_MAX_LENGTH = 20
_SYMBOL_RE = re.compile(SYMBOL_PATTERN)


def symbol_and_query(
    request, raw_symbol: str, query_serializer: type[serializers.Serializer]
) -> tuple[str, dict]:
    """The validated path symbol and query string of a read endpoint (InvalidSymbol / ValidationError → 400)."""
    symbol = symbol_from_path(raw_symbol)
    # A DRF request's query_params, or a Django request's GET (the async hot views: tradingdash.async_views).
    query = query_serializer(data=getattr(request, "query_params", request.GET))
    query.is_valid(raise_exception=True)
    return symbol, query.validated_data


def symbol_from_path(raw: str) -> str:
    """Validate a symbol from a URL (raises InvalidSymbol → 400). Stricter than parse_symbol, which also tidies
    what people type: str.strip() and str.upper() would let spaces and some non-ASCII letters (the long s
    upper-cases to S) through."""
    symbol = parse_symbol(raw, default_suffix=settings.DEFAULT_SYMBOL_SUFFIX)
    if not _SYMBOL_RE.fullmatch(raw):
        raise InvalidSymbol(
            f"Invalid symbol {raw[:32]!r}: each part starts with a letter or digit, without spaces (e.g. M&M, ^NSEI)"
        )
    return symbol


def symbols_from_texts(texts) -> list[str]:
    """Validated symbols in the order given, without repeats; every invalid one named in one 400."""
    symbols, invalid = [], []
    for text in texts:
        try:
            symbol = symbol_from_path(text)
        except InvalidSymbol as exc:
            invalid.append(str(exc))
            continue
        if symbol not in symbols:
            symbols.append(symbol)
    if invalid:
        raise serializers.ValidationError(invalid)
    return symbols
