from __future__ import annotations

from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied, Throttled
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.throttles import GenerationThrottle
from market.api.fields import symbol_and_query, symbol_from_path
from market.api.views import SYMBOL_PARAM
from predictions.api.serializers import (
    AccuracySerializer,
    GenerateInputSerializer,
    ListQuerySerializer,
    ModelsOverviewSerializer,
    PredictionListSerializer,
    PredictionMadeSerializer,
    PredictionSerializer,
    TaskAcceptedSerializer,
    TaskStatusSerializer,
    TimeframeQuerySerializer,
    TrainInputSerializer,
)
from predictions.ml.evaluation import InsufficientHistory
from predictions.models import TaskRecord
from predictions.selectors import (
    models_overview,
    prediction_get,
    predictions_accuracy,
    predictions_list,
    task_status,
)
from predictions.services import (
    ModelUnavailable,
    NotEnoughHistory,
    Queued,
    TrainingNotAllowed,
    TrainingQuotaExceeded,
    prediction_request,
    training_enqueue,
)
from tradingdash.exceptions import ServiceUnavailable, Unprocessable

DATA_ERRORS = (404, 422, 503)
GENERATE_ERRORS = (403, 404, 422, 503)


def _not_enough(exc: NotEnoughHistory) -> Unprocessable:
    return Unprocessable(
        f"Not enough history: at least {exc.needed} candles are needed, {exc.available} are stored.",
        code="insufficient_history",
        details={"needed": exc.needed, "available": exc.available},
    )


def _training_refused(exc: Exception):
    if isinstance(exc, NotEnoughHistory):
        return _not_enough(exc)
    if isinstance(exc, TrainingQuotaExceeded):
        return Throttled(wait=exc.retry_after, detail=str(exc), code="training_quota_exceeded")
    return PermissionDenied(str(exc), code="training_not_allowed")


def _accepted(request, answer: Queued) -> Response:
    """202 with the task; a task that has already finished (tasks run inline without a broker) says so and
    carries its result."""
    record = answer.task
    url = request.build_absolute_uri(reverse("task-status", kwargs={"task_id": record.task_id}))
    current = task_status(record=record)
    if current["state"] in {"SUCCESS", "FAILURE"}:
        label = current["state"]
    elif answer.following:
        label = "waiting_for_training"
    else:
        label = "already_running" if answer.joined else "queued"
    return Response(
        {
            "task_id": record.task_id,
            "status_url": url,
            "status": label,
            "state": current["state"],
            "result": current["result"],
        },
        status=status.HTTP_202_ACCEPTED,
    )


class PredictionListApi(APIView):
    extra_error_statuses = (404, 503)

    @extend_schema(
        parameters=[SYMBOL_PARAM, ListQuerySerializer],
        responses={200: PredictionListSerializer},
        tags=["predictions"],
    )
    def get(self, request, symbol: str):
        symbol, query = symbol_and_query(request, symbol, ListQuerySerializer)
        return Response(predictions_list(symbol=symbol, user=request.user, **query))


class PredictionGenerateApi(APIView):
    """201 with the prediction when it can be made here; 202 with a task when the prediction needs training
    first, or an LSTM (TensorFlow runs only in ML workers). Never trains inside the request.

    Without `model`: the best active model that beats naive, else naive (`default_reason` says which and why).
    A model named is served even when it does not beat naive (`beats_naive: false`); `naive` needs no training.
    """

    throttle_classes = [GenerationThrottle]
    extra_error_statuses = GENERATE_ERRORS

    @extend_schema(
        parameters=[SYMBOL_PARAM],
        request=GenerateInputSerializer,
        responses={201: PredictionMadeSerializer, 202: TaskAcceptedSerializer},
        tags=["predictions"],
    )
    def post(self, request, symbol: str):
        symbol = symbol_from_path(symbol)
        data = GenerateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            answer = prediction_request(user=request.user, symbol=symbol, **data.validated_data)
        except (NotEnoughHistory, TrainingQuotaExceeded, TrainingNotAllowed) as exc:
            raise _training_refused(exc) from exc
        except InsufficientHistory as exc:
            raise Unprocessable(str(exc), code="insufficient_history") from exc
        except ModelUnavailable as exc:
            raise ServiceUnavailable(str(exc), code="model_unavailable") from exc
        if isinstance(answer, Queued):
            return _accepted(request, answer)
        return Response(answer, status=status.HTTP_201_CREATED)


class TrainApi(APIView):
    permission_classes = [IsAdminUser]
    throttle_classes = [GenerationThrottle]
    extra_error_statuses = DATA_ERRORS

    @extend_schema(
        parameters=[SYMBOL_PARAM],
        request=TrainInputSerializer,
        responses={202: TaskAcceptedSerializer},
        tags=["predictions"],
    )
    def post(self, request, symbol: str):
        symbol = symbol_from_path(symbol)
        data = TrainInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            answer = training_enqueue(
                user=request.user,
                symbol=symbol,
                timeframe=data.validated_data["timeframe"],
                horizon=data.validated_data["horizon"],
                algorithms=data.validated_data.get("algorithms"),
            )
        except NotEnoughHistory as exc:
            raise _not_enough(exc) from exc
        return _accepted(request, answer)


class ModelsApi(APIView):
    extra_error_statuses = (404, 503)  # an unknown symbol; a provider asked whether it knows it

    @extend_schema(
        parameters=[SYMBOL_PARAM, TimeframeQuerySerializer],
        responses={200: ModelsOverviewSerializer},
        tags=["predictions"],
    )
    def get(self, request, symbol: str):
        symbol, query = symbol_and_query(request, symbol, TimeframeQuerySerializer)
        return Response(models_overview(symbol=symbol, **query))


class AccuracyApi(APIView):
    extra_error_statuses = (404, 503)  # an unknown symbol; a provider asked whether it knows it

    @extend_schema(
        parameters=[SYMBOL_PARAM, TimeframeQuerySerializer],
        responses={200: AccuracySerializer},
        tags=["predictions"],
    )
    def get(self, request, symbol: str):
        symbol, query = symbol_and_query(request, symbol, TimeframeQuerySerializer)
        return Response(predictions_accuracy(symbol=symbol, user=request.user, **query))


class TaskStatusApi(APIView):
    """A background task's state; visible only to the user who started it, and to staff."""

    @extend_schema(
        parameters=[OpenApiParameter("task_id", str, OpenApiParameter.PATH)],
        responses={200: TaskStatusSerializer},
        tags=["tasks"],
    )
    def get(self, request, task_id: str):
        if "\x00" in task_id or len(task_id) > 255:  # no task has such an id (PostgreSQL refuses NUL bytes)
            raise Http404
        record = TaskRecord.objects.select_related("follows").filter(task_id=task_id).first()
        if record is None or not (request.user.is_staff or record.user_id == request.user.pk):
            raise Http404
        return Response(task_status(record=record))


class PredictionDetailApi(APIView):
    """One prediction, for the user who asked for it (staff read any; system predictions are public)."""

    @extend_schema(
        parameters=[OpenApiParameter("prediction_id", int, OpenApiParameter.PATH)],
        responses={200: PredictionSerializer},
        tags=["predictions"],
    )
    def get(self, request, prediction_id: int):
        row = prediction_get(prediction_id=prediction_id, user=request.user)
        if row is None:
            raise Http404
        return Response(row)
