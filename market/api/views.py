from __future__ import annotations

from dataclasses import asdict

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.throttles import GenerationThrottle
from market.api.fields import SYMBOL_MAX_LENGTH, SYMBOL_PATTERN, symbol_and_query, symbol_from_path
from market.api.serializers import (
    HistoricalQuerySerializer,
    HistoricalSerializer,
    IndicatorsQuerySerializer,
    IndicatorsSerializer,
    InstrumentSerializer,
    MarketStatusQuerySerializer,
    MarketStatusSerializer,
    MultipleQuerySerializer,
    MultipleSerializer,
    QualityQuerySerializer,
    QualityReportSerializer,
    QuoteSerializer,
    SyncInputSerializer,
    SyncResultSerializer,
)
from market.caching import history_body_aget, market_version_awarm, quote_cache_awarm
from market.selectors import (
    candles_history,
    candles_history_key,
    indicators_history,
    instruments_list,
    market_status,
    quality_report,
    quote_get,
    quotes_multiple,
)
from market.services import candles_sync

SYMBOL_PARAM = OpenApiParameter(
    "symbol",
    {"type": "string", "pattern": SYMBOL_PATTERN, "minLength": 1, "maxLength": SYMBOL_MAX_LENGTH},
    OpenApiParameter.PATH,
    description="e.g. RELIANCE, RELIANCE.NS, ^NSEI (URL-encoded)",
    examples=[OpenApiExample("NSE equity", value="TCS"), OpenApiExample("Index", value="^NSEI")],
)
# The canonical form of ?symbols=, at most 50 (MARKET_MULTIPLE_MAX_SYMBOLS); the API also takes spaces after
# commas and longer dotted names.
_SYMBOL_IN_LIST = r"\^?[A-Za-z0-9][A-Za-z0-9&-]{0,14}(?:\.(?:[Nn][Ss]|[Bb][Oo]|[Ll]))?"
SYMBOLS_PARAM = OpenApiParameter(
    "symbols",
    {"type": "string", "pattern": rf"^{_SYMBOL_IN_LIST}(?:,{_SYMBOL_IN_LIST}){{0,49}}$", "maxLength": 2000},
    OpenApiParameter.QUERY,
    required=True,
    description="Comma-separated symbols, at most 50, e.g. RELIANCE,TCS.NS,^NSEI.",
)
PROVIDER_ERRORS = (404, 503)


class MarketStatusApi(APIView):
    @extend_schema(
        parameters=[MarketStatusQuerySerializer], responses={200: MarketStatusSerializer}, tags=["market"]
    )
    def get(self, request):
        query = MarketStatusQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(market_status(**query.validated_data))


class SymbolsApi(APIView):
    @extend_schema(
        responses={200: inline_serializer("InstrumentList", {"results": InstrumentSerializer(many=True)})},
        tags=["market"],
    )
    def get(self, request):
        return Response({"results": instruments_list()})


class QuoteApi(APIView):
    extra_error_statuses = PROVIDER_ERRORS

    @extend_schema(parameters=[SYMBOL_PARAM], responses={200: QuoteSerializer}, tags=["market"])
    def get(self, request, symbol: str):
        return Response(quote_get(symbol=symbol_from_path(symbol)))


async def quote_from_memory(request, symbol: str) -> dict:
    """QuoteApi's answer on the event loop (tradingdash.async_views): the same selector, from the per-process
    caches, the quote copied into them from Redis without a thread when its one-second entry expired (a miss
    raises and QuoteApi answers in a thread)."""
    symbol = symbol_from_path(symbol)
    await quote_cache_awarm(symbol)
    return quote_get(symbol=symbol)


class HistoricalApi(APIView):
    extra_error_statuses = PROVIDER_ERRORS

    @extend_schema(
        parameters=[SYMBOL_PARAM, HistoricalQuerySerializer],
        responses={200: HistoricalSerializer},
        tags=["market"],
    )
    def get(self, request, symbol: str):
        symbol, query = symbol_and_query(request, symbol, HistoricalQuerySerializer)
        # Already rendered (and cached as bytes): 2,500 candles are not re-serialized per request.
        return HttpResponse(candles_history(symbol=symbol, **query), content_type="application/json")


async def historical_from_memory(request, symbol: str) -> bytes | None:
    """HistoricalApi's cached body read on the event loop (tradingdash.async_views): same parsing, same cache
    key as candles_history; None on a miss, which HistoricalApi then serves in a thread."""
    symbol, query = symbol_and_query(request, symbol, HistoricalQuerySerializer)
    await market_version_awarm(symbol)
    return await history_body_aget(candles_history_key(symbol=symbol, **query))


class SyncApi(APIView):
    """Staff only: fetch and store a symbol's candles now (incremental, idempotent)."""

    permission_classes = [IsAdminUser]
    throttle_classes = [GenerationThrottle]
    extra_error_statuses = PROVIDER_ERRORS

    @extend_schema(
        parameters=[SYMBOL_PARAM],
        request=SyncInputSerializer,
        responses={200: SyncResultSerializer},
        tags=["market"],
    )
    def post(self, request, symbol: str):
        symbol = symbol_from_path(symbol)
        data = SyncInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(asdict(candles_sync(symbol=symbol, **data.validated_data)))


class MultipleApi(APIView):
    @extend_schema(parameters=[SYMBOLS_PARAM], responses={200: MultipleSerializer}, tags=["market"])
    def get(self, request):
        query = MultipleQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(quotes_multiple(symbols=query.validated_data["symbols"]))


class QualityApi(APIView):
    """Staff only: the data-quality findings of a symbol's stored candles (checked nightly and by
    `manage.py check_data_quality`)."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        parameters=[SYMBOL_PARAM, QualityQuerySerializer],
        responses={200: QualityReportSerializer},
        tags=["market"],
    )
    def get(self, request, symbol: str):
        symbol, query = symbol_and_query(request, symbol, QualityQuerySerializer)
        return Response(QualityReportSerializer(quality_report(symbol=symbol, **query)).data)


class IndicatorsApi(APIView):
    extra_error_statuses = PROVIDER_ERRORS

    @extend_schema(
        parameters=[SYMBOL_PARAM, IndicatorsQuerySerializer],
        responses={200: IndicatorsSerializer},
        tags=["market"],
    )
    def get(self, request, symbol: str):
        symbol, query = symbol_and_query(request, symbol, IndicatorsQuerySerializer)
        return Response(indicators_history(symbol=symbol, indicators=query.pop("names"), **query))
