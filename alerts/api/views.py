from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.throttles import GenerationThrottle
from alerts.api.serializers import (
    AlertEventSerializer,
    AlertInputSerializer,
    AlertSerializer,
    ChannelInputSerializer,
    ChannelSerializer,
    ChannelTestSerializer,
    EventQuerySerializer,
)
from alerts.models import Alert, NotificationChannel
from alerts.selectors import alerts_of, channels_of, events_list
from alerts.services import AlertError, alert_create, alert_update, channel_create, channel_test


def _refused(exc: AlertError) -> serializers.ValidationError:
    return serializers.ValidationError({exc.field: [str(exc)]})


class AlertListApi(APIView):
    @extend_schema(
        operation_id="alerts_list",
        responses={200: inline_serializer("AlertList", {"results": AlertSerializer(many=True)})},
        tags=["alerts"],
    )
    def get(self, request):
        return Response({"results": AlertSerializer(alerts_of(user=request.user), many=True).data})

    @extend_schema(request=AlertInputSerializer, responses={201: AlertSerializer}, tags=["alerts"])
    def post(self, request):
        data = AlertInputSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        try:
            alert = alert_create(user=request.user, **data.validated_data)
        except AlertError as exc:
            raise _refused(exc) from exc
        return Response(AlertSerializer(alert).data, status=status.HTTP_201_CREATED)


class AlertDetailApi(APIView):
    @staticmethod
    def _owned(request, pk: int) -> Alert:
        return get_object_or_404(alerts_of(user=request.user), pk=pk)

    @extend_schema(responses={200: AlertSerializer}, tags=["alerts"])
    def get(self, request, pk: int):
        return Response(AlertSerializer(self._owned(request, pk)).data)

    @extend_schema(
        request=AlertInputSerializer(partial=True), responses={200: AlertSerializer}, tags=["alerts"]
    )
    def patch(self, request, pk: int):
        alert = self._owned(request, pk)
        data = AlertInputSerializer(alert, data=request.data, partial=True, context={"request": request})
        data.is_valid(raise_exception=True)
        try:
            updated = alert_update(alert=alert, **data.validated_data)
        except AlertError as exc:
            raise _refused(exc) from exc
        except Alert.DoesNotExist as exc:  # deleted (another tab) since it was found above
            raise Http404 from exc
        return Response(AlertSerializer(self._owned(request, updated.pk)).data)

    @extend_schema(responses={204: None}, tags=["alerts"])
    def delete(self, request, pk: int):
        self._owned(request, pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class AlertEventListApi(APIView):
    @extend_schema(
        parameters=[EventQuerySerializer],
        responses={200: inline_serializer("AlertEventList", {"results": AlertEventSerializer(many=True)})},
        tags=["alerts"],
    )
    def get(self, request):
        query = EventQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        events = events_list(user=request.user, **query.validated_data)
        return Response({"results": AlertEventSerializer(events, many=True).data})


class ChannelListApi(APIView):
    @extend_schema(
        responses={200: inline_serializer("ChannelList", {"results": ChannelSerializer(many=True)})},
        tags=["notifications"],
    )
    def get(self, request):
        return Response({"results": ChannelSerializer(channels_of(user=request.user), many=True).data})

    @extend_schema(request=ChannelInputSerializer, responses={201: ChannelSerializer}, tags=["notifications"])
    def post(self, request):
        data = ChannelInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            channel = channel_create(user=request.user, **data.validated_data)
        except AlertError as exc:
            raise _refused(exc) from exc
        return Response(ChannelSerializer(channel).data, status=status.HTTP_201_CREATED)


def _owned_channel(request, pk: int) -> NotificationChannel:
    return get_object_or_404(NotificationChannel, pk=pk, user=request.user)


class ChannelDetailApi(APIView):
    @extend_schema(responses={204: None}, tags=["notifications"])
    def delete(self, request, pk: int):
        _owned_channel(request, pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChannelTestApi(APIView):
    # Each call makes an outbound request to a user-chosen host: rate-limited like generation.
    throttle_classes = [GenerationThrottle]

    @extend_schema(request=None, responses={200: ChannelTestSerializer}, tags=["notifications"])
    def post(self, request, pk: int):
        return Response(channel_test(channel=_owned_channel(request, pk)))
