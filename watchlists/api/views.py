from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from market.api.serializers import MultipleSerializer
from market.selectors import quotes_multiple
from watchlists.api.serializers import WatchlistInputSerializer, WatchlistSerializer
from watchlists.models import Watchlist
from watchlists.selectors import watchlists_of
from watchlists.services import (
    WatchlistError,
    watchlist_create,
    watchlist_update,
    watchlists_ensure_default,
)


def _refused(exc: WatchlistError) -> serializers.ValidationError:
    return serializers.ValidationError({exc.field: [str(exc)]})


def _owned(request, pk: int) -> Watchlist:
    """The caller's list; another user's is 404, exactly like one that does not exist."""
    return get_object_or_404(Watchlist, pk=pk, user=request.user)


class WatchlistListApi(APIView):
    @extend_schema(
        operation_id="watchlists_list",
        responses={200: inline_serializer("WatchlistList", {"results": WatchlistSerializer(many=True)})},
        tags=["watchlists"],
    )
    def get(self, request):
        watchlists_ensure_default(user=request.user)
        return Response({"results": WatchlistSerializer(watchlists_of(user=request.user), many=True).data})

    @extend_schema(
        request=WatchlistInputSerializer, responses={201: WatchlistSerializer}, tags=["watchlists"]
    )
    def post(self, request):
        data = WatchlistInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        watchlists_ensure_default(user=request.user)
        try:
            watchlist = watchlist_create(user=request.user, **data.validated_data)
        except WatchlistError as exc:
            raise _refused(exc) from exc
        return Response(WatchlistSerializer(watchlist).data, status=status.HTTP_201_CREATED)


class WatchlistDetailApi(APIView):
    @extend_schema(responses={200: WatchlistSerializer}, tags=["watchlists"])
    def get(self, request, pk: int):
        return Response(WatchlistSerializer(_owned(request, pk)).data)

    @extend_schema(
        request=WatchlistInputSerializer(partial=True),
        responses={200: WatchlistSerializer},
        tags=["watchlists"],
    )
    def patch(self, request, pk: int):
        watchlist = _owned(request, pk)
        data = WatchlistInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        try:
            watchlist = watchlist_update(watchlist=watchlist, **data.validated_data)
        except WatchlistError as exc:
            raise _refused(exc) from exc
        except Watchlist.DoesNotExist as exc:  # deleted (another tab) since it was found above
            raise Http404 from exc
        return Response(WatchlistSerializer(watchlist).data)

    @extend_schema(responses={204: None}, tags=["watchlists"])
    def delete(self, request, pk: int):
        _owned(request, pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class WatchlistQuotesApi(APIView):
    extra_error_statuses = (404,)

    @extend_schema(responses={200: MultipleSerializer}, tags=["watchlists"])
    def get(self, request, pk: int):
        return Response(quotes_multiple(symbols=_owned(request, pk).symbols))
