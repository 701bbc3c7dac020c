"""Input fields shared by the market, predictions and signals APIs."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from market.sources import symbol_require_supported, time_zone_for_symbol
from market.symbols import InvalidSymbol, parse_symbol
from market.timeframes import STORED_TIMEFRAMES, Timeframe

_ALIASES = {"1h": Timeframe.H1, "4h": Timeframe.H4, "1d": Timeframe.D1, "1w": Timeframe.W1}
_MIN_YEAR, _MAX_YEAR = 1900, 2100
# A datetime whose "+05:30" arrived as " 05:30": an unencoded '+' in a query string is a space.
_PLUS_AS_SPACE = re.compile(r"^\d{4}-\d{2}-\d{2}T[\d:.]+ \d{2}(:?\d{2})?$")


class TimeframeField(serializers.ChoiceField):
    """One of the stored timeframes 1m, 5m, 15m, 1H, 1D, 1W (1h, 1d and 1w accepted too); with `derived`, also
    those built from finer bars on read (4H, 1M)."""

    def __init__(self, *, derived: bool = False, **kwargs):
        valid = list(Timeframe) if derived else list(STORED_TIMEFRAMES)
        choices = [tf.value for tf in valid] + [alias for alias, tf in _ALIASES.items() if tf in valid]
        kwargs.setdefault("help_text", f"One of {', '.join(tf.value for tf in valid)}.")
        super().__init__(choices=choices, **kwargs)
        self.error_messages["invalid_choice"] = (
            f'"{{input}}" is not a valid timeframe; use one of {", ".join(tf.value for tf in valid)}.'
        )

    def to_internal_value(self, data) -> Timeframe:
        return Timeframe.parse(super().to_internal_value(data), stored_only=False)

    def to_representation(self, value) -> str:
        return str(Timeframe.parse(str(value), stored_only=False).value)


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
        "description": "A date: that trading day in the symbol's exchange time (as `start`, from its midnight; "
        "as `end`, the whole day included), or an RFC 3339 datetime with a UTC offset (a datetime without one "
        f"is refused), years {_MIN_YEAR}-{_MAX_YEAR}.",
    }
)
class InstantField(serializers.Field):
    """A date (YYYY-MM-DD: a trading day in the exchange time of the serializer's `symbol` context, NSE's
    without one) or an ISO 8601 datetime with a UTC offset. With `end_of_day`, a date stands for the end of that
    day (the next midnight), so an exclusive end includes the whole day."""

    default_error_messages = {
        "invalid": "Use a date (YYYY-MM-DD) or an ISO 8601 datetime with a UTC offset.",
        "naive": "A datetime needs a UTC offset, e.g. 2026-01-05T09:15:00+05:30.",
        "plus_as_space": "A '+' in a URL reads as a space: send the offset as %2B, e.g. "
        "2026-01-05T09:15:00%2B05:30 (or a time in UTC: 2026-01-05T03:45:00Z).",
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
            return datetime.combine(day, time(), tzinfo=self._time_zone())
        if parsed is None:
            if _PLUS_AS_SPACE.match(data):
                self.fail("plus_as_space")
            self.fail("invalid")
        if parsed.tzinfo is None:
            self.fail("naive")
        if not _MIN_YEAR <= parsed.year <= _MAX_YEAR:
            self.fail("range")
        return parsed

    def _time_zone(self):
        """Where the query's symbol trades: a trading day starts at midnight there."""
        symbol = self.context.get("symbol")
        return time_zone_for_symbol(symbol) if symbol else ZoneInfo(settings.EXCHANGE_TIME_ZONE)

    def to_representation(self, value):
        return value.isoformat() if isinstance(value, datetime | date) else value


# Symbols as the API takes them: parse_symbol's rules, and each dot-separated part starts with a letter or digit,
# no surrounding spaces, ASCII only; at most 20 characters, 17 for a bare name (it gets the .NS suffix); a
# suffix names a supported exchange (.NS, .BO, .L, any case), unless staff list the instrument with its
# exchange (market.sources.symbol_require_supported), which a pattern cannot say.
# The OpenAPI schema publishes this pattern; market/tests/api/test_symbol_schema.py keeps the two in step.
_PART = "[A-Za-z0-9][A-Za-z0-9&-]*"
_SUFFIX = r"\.(?:[Nn][Ss]|[Bb][Oo]|[Ll])"
SYMBOL_PATTERN = (
    rf"^(?:\^{_PART}(?:\.{_PART})*|{_PART}(?:\.{_PART})*{_SUFFIX}|[A-Za-z0-9][A-Za-z0-9&-]{{0,16}})$"
)
SYMBOL_MAX_LENGTH = 20
# The form alone, any suffix: the suffix is checked next, against the catalogue too (symbol_require_supported).
_SYMBOL_RE = re.compile(
    rf"^(?:\^{_PART}(?:\.{_PART})*|{_PART}(?:\.{_PART})+|[A-Za-z0-9][A-Za-z0-9&-]{{0,16}})$"
)


def symbol_and_query(
    request, raw_symbol: str, query_serializer: type[serializers.Serializer]
) -> tuple[str, dict]:
    """The validated path symbol and query string of a read endpoint (InvalidSymbol / ValidationError → 400).
    Dates in the query are trading days of the symbol's exchange (InstantField).

    Validated once per request: a historical read that misses the cache is validated on the event loop first
    (tradingdash.async_views) and then again by the DRF view in a thread, 0.4 ms each of a 6.6 ms miss. Only
    a valid query is kept (an invalid one raises each time, so the DRF view answers its 400); each caller gets
    a copy of it."""
    http_request = getattr(request, "_request", request)  # the Django request under a DRF one
    validated = http_request.__dict__.setdefault("_validated_queries", {})
    key = (raw_symbol, query_serializer)
    if key not in validated:
        symbol = symbol_from_path(raw_symbol)
        # A DRF request's query_params, or a Django request's GET (the async hot views).
        query = query_serializer(
            data=getattr(request, "query_params", request.GET), context={"symbol": symbol}
        )
        query.is_valid(raise_exception=True)
        validated[key] = (symbol, query.validated_data)
    symbol, query = validated[key]
    return symbol, dict(query)


def symbol_from_path(raw: str) -> str:
    """Validate a symbol from a URL (raises InvalidSymbol → 400). Stricter than parse_symbol, which also tidies
    what people type: str.strip() and str.upper() would let spaces and some non-ASCII letters (the long s
    upper-cases to S) through."""
    symbol = parse_symbol(raw, default_suffix=settings.DEFAULT_SYMBOL_SUFFIX)
    if not _SYMBOL_RE.fullmatch(raw):
        raise InvalidSymbol(
            f"Invalid symbol {raw[:32]!r}: each part starts with a letter or digit, without spaces (e.g. M&M, ^NSEI)"
        )
    symbol_require_supported(symbol)
    return symbol


def symbols_from_texts(texts) -> list[str]:
    """Validated symbols in the order given, without repeats; every invalid one named in one 400."""
    symbols, invalid = {}, []  # a dict keeps the order: a list's `in` made a long list quadratic
    for text in texts:
        try:
            symbol = symbol_from_path(text)
        except InvalidSymbol as exc:
            invalid.append(str(exc))
            continue
        symbols.setdefault(symbol, None)
    if invalid:
        raise serializers.ValidationError(invalid)
    return list(symbols)
