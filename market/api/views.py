from __future__ import annotations

from dataclasses import asdict

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.throttles import GenerationThrottle
from market.api.fields import symbol_from_path
from market.api.serializers import (
    HistoricalQuerySerializer,
    HistoricalSerializer,
    InstrumentSerializer,
    MarketStatusSerializer,
    MultipleQuerySerializer,
    MultipleSerializer,
    QuoteSerializer,
    SyncInputSerializer,
    SyncResultSerializer,
)
from market.selectors import candles_history, instruments_list, market_status, quote_get, quotes_multiple
from market.services import candles_sync

SYMBOL_PARAM = OpenApiParameter(
    "symbol", str, OpenApiParameter.PATH, description="e.g. RELIANCE, RELIANCE.NS, ^NSEI (URL-encoded)"
)
PROVIDER_ERRORS = (404, 503)


class MarketStatusApi(APIView):
    @extend_schema(responses={200: MarketStatusSerializer}, tags=["market"])
    def get(self, request):
        return Response(market_status())


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


class HistoricalApi(APIView):
    extra_error_statuses = PROVIDER_ERRORS

    @extend_schema(
        parameters=[SYMBOL_PARAM, HistoricalQuerySerializer],
        responses={200: HistoricalSerializer},
        tags=["market"],
    )
    def get(self, request, symbol: str):
        symbol = symbol_from_path(symbol)
        query = HistoricalQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(candles_history(symbol=symbol, **query.validated_data))


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
    @extend_schema(parameters=[MultipleQuerySerializer], responses={200: MultipleSerializer}, tags=["market"])
    def get(self, request):
        query = MultipleQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(quotes_multiple(symbols=query.validated_data["symbols"]))
