"""The chart page of one instrument (an admin page) and the staff-only JSON it draws."""

from __future__ import annotations

from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from charts.selectors import chart_data
from market.api.fields import symbol_and_query, symbol_from_path
from market.api.serializers import HistoricalQuerySerializer
from market.symbols import InvalidSymbol
from market.timeframes import Timeframe


class ChartDataApi(APIView):
    """Staff only, through the admin's session: the candles, signals, predictions, levels and backtest."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAdminUser]
    schema = None  # part of the admin, not of the public API

    def get(self, request, symbol: str):
        symbol, query = symbol_and_query(request, symbol, HistoricalQuerySerializer)
        query.pop("format")  # the chart page takes rows
        return Response(chart_data(symbol=symbol, **query))


def chart_page(request: HttpRequest, symbol: str) -> HttpResponse:
    """The page itself; its script asks ChartDataApi with the same query string (timeframe, start, end, limit)."""
    try:
        symbol = symbol_from_path(symbol)
    except InvalidSymbol as exc:
        raise Http404(str(exc)) from exc
    context = {
        **admin.site.each_context(request),
        "title": f"{symbol} chart",
        "symbol": symbol,
        "timeframes": [t.value for t in Timeframe],
        "query": {
            "timeframe": request.GET.get("timeframe", Timeframe.D1.value),
            "start": request.GET.get("start", ""),
            "end": request.GET.get("end", ""),
            "limit": request.GET.get("limit", "500"),
        },
        "chart_config": {"data_url": reverse("admin-chart-data", args=[symbol])},
    }
    return TemplateResponse(request, "charts/chart.html", context)
