from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.throttles import GenerationThrottle
from market.api.fields import symbol_and_query, symbol_from_path
from market.api.views import SYMBOL_PARAM
from signals.api.serializers import (
    BacktestQuerySerializer,
    BacktestSerializer,
    SignalGenerateInputSerializer,
    SignalListQuerySerializer,
    SignalListSerializer,
    SignalSerializer,
)
from signals.selectors import signal_row, signals_list
from signals.services import EmptyRange, NotEnoughCandles, signal_backtest, signal_generate_id
from tradingdash.exceptions import Unprocessable

DATA_ERRORS = (404, 422, 503)


def _unprocessable(exc: NotEnoughCandles) -> Unprocessable:
    return Unprocessable(
        str(exc), code="insufficient_history", details={"needed": exc.needed, "available": exc.available}
    )


class SignalListApi(APIView):
    extra_error_statuses = (404, 503)

    @extend_schema(
        parameters=[SYMBOL_PARAM, SignalListQuerySerializer],
        responses={200: SignalListSerializer},
        tags=["signals"],
    )
    def get(self, request, symbol: str):
        symbol, query = symbol_and_query(request, symbol, SignalListQuerySerializer)
        return Response(signals_list(symbol=symbol, **query))


class SignalGenerateApi(APIView):
    throttle_classes = [GenerationThrottle]
    extra_error_statuses = DATA_ERRORS

    @extend_schema(
        parameters=[SYMBOL_PARAM],
        request=SignalGenerateInputSerializer,
        responses={201: SignalSerializer},
        tags=["signals"],
    )
    def post(self, request, symbol: str):
        symbol = symbol_from_path(symbol)
        data = SignalGenerateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            signal_id = signal_generate_id(symbol=symbol, **data.validated_data)
        except NotEnoughCandles as exc:
            raise _unprocessable(exc) from exc
        return Response(signal_row(signal_id), status=status.HTTP_201_CREATED)


class BacktestApi(APIView):
    extra_error_statuses = DATA_ERRORS

    @extend_schema(
        parameters=[SYMBOL_PARAM, BacktestQuerySerializer],
        responses={200: BacktestSerializer},
        tags=["signals"],
    )
    def get(self, request, symbol: str):
        symbol, query = symbol_and_query(request, symbol, BacktestQuerySerializer)
        try:
            return Response(signal_backtest(symbol=symbol, **query))
        except NotEnoughCandles as exc:
            raise _unprocessable(exc) from exc
        except EmptyRange as exc:
            raise Unprocessable(str(exc), code="empty_range") from exc
