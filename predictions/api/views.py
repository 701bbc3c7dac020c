from __future__ import annotations

from celery.result import AsyncResult
from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
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
    TaskAcceptedSerializer,
    TaskStatusSerializer,
    TimeframeQuerySerializer,
    TrainInputSerializer,
)
from predictions.ml.evaluation import InsufficientHistory
from predictions.models import TaskRecord
from predictions.selectors import (
    model_default,
    models_overview,
    prediction_made,
    predictions_accuracy,
    predictions_list,
)
from predictions.services import (
    DEFAULT_MODEL,
    NotEnoughHistory,
    active_model,
    active_models_exist,
    history_needed,
    prediction_generate,
    task_enqueue,
    training_candles,
)
from predictions.tasks import generate_prediction, train_models
from tradingdash.exceptions import Unprocessable

DATA_ERRORS = (404, 422, 503)


def _not_enough(needed: int, available: int) -> Unprocessable:
    return Unprocessable(
        f"Not enough history: at least {needed} candles are needed, {available} are stored.",
        code="insufficient_history",
        details={"needed": needed, "available": available},
    )


def _accepted(request, record: TaskRecord, created: bool) -> Response:
    url = request.build_absolute_uri(reverse("task-status", kwargs={"task_id": record.task_id}))
    return Response(
        {"task_id": record.task_id, "status_url": url, "status": "queued" if created else "already_running"},
        status=status.HTTP_202_ACCEPTED,
    )


def _enqueue_training(request, *, symbol, timeframe, horizon, algorithms, then_predict=None) -> Response:
    candles = training_candles(symbol=symbol, timeframe=timeframe)
    needed = history_needed(horizon)
    if len(candles) < needed:
        raise _not_enough(needed, len(candles))
    names = ",".join(sorted(algorithms or ["all"]))
    record, created = task_enqueue(
        task=train_models,
        kwargs={
            "symbol": symbol,
            "timeframe": timeframe.value,
            "horizon": horizon,
            "algorithms": algorithms,
            "then_predict": then_predict,
            "user_id": request.user.pk,
        },
        key=f"train:{symbol}:{timeframe.value}:{horizon}:{names}",
        user_id=request.user.pk,
    )
    return _accepted(request, record, created)


class PredictionListApi(APIView):
    @extend_schema(
        parameters=[SYMBOL_PARAM, ListQuerySerializer],
        responses={200: PredictionListSerializer},
        tags=["predictions"],
    )
    def get(self, request, symbol: str):
        symbol, query = symbol_and_query(request, symbol, ListQuerySerializer)
        return Response(predictions_list(symbol=symbol, **query))


class PredictionGenerateApi(APIView):
    """201 with the prediction when it can be made here; 202 with a task when the prediction needs training
    first, or an LSTM (TensorFlow runs only in ML workers). Never trains inside the request.

    Without `model`: the best active model that beats naive, else naive (`default_reason` says which and why).
    A model named is served even when it does not beat naive (`beats_naive: false`); `naive` needs no training.
    """

    throttle_classes = [GenerationThrottle]
    extra_error_statuses = DATA_ERRORS

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
        timeframe, horizon = data.validated_data["timeframe"], data.validated_data["horizon"]
        model = data.validated_data.get("model") or DEFAULT_MODEL
        if model == DEFAULT_MODEL:
            trained = model_default(symbol=symbol, timeframe=timeframe, horizon=horizon)
            if trained is None and not active_models_exist(
                symbol=symbol, timeframe=timeframe, horizon=horizon
            ):
                return _enqueue_training(
                    request,
                    symbol=symbol,
                    timeframe=timeframe,
                    horizon=horizon,
                    algorithms=None,
                    then_predict=DEFAULT_MODEL,
                )
        elif model == "naive":
            trained = None
        else:
            trained = active_model(symbol=symbol, timeframe=timeframe, horizon=horizon, algorithm=model)
            if trained is None:
                algorithms = None if model == "ensemble" else [model]
                return _enqueue_training(
                    request,
                    symbol=symbol,
                    timeframe=timeframe,
                    horizon=horizon,
                    algorithms=algorithms,
                    then_predict=model,
                )
        if trained is not None and trained.needs_tensorflow:
            # TensorFlow (~700 MB) stays out of web workers: LSTM predictions run on the `ml` queue.
            record, created = task_enqueue(
                task=generate_prediction,
                kwargs={
                    "symbol": symbol,
                    "timeframe": timeframe.value,
                    "horizon": horizon,
                    "model": model,
                    "user_id": request.user.pk,
                },
                key=f"predict:{symbol}:{timeframe.value}:{horizon}:{model}:{request.user.pk}",
                user_id=request.user.pk,
            )
            return _accepted(request, record, created)
        try:
            prediction = prediction_generate(
                symbol=symbol, timeframe=timeframe, horizon=horizon, model=model, user_id=request.user.pk
            )
        except InsufficientHistory as exc:
            raise Unprocessable(str(exc), code="insufficient_history") from exc
        return Response(prediction_made(prediction), status=status.HTTP_201_CREATED)


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
        return _enqueue_training(
            request,
            symbol=symbol,
            timeframe=data.validated_data["timeframe"],
            horizon=data.validated_data["horizon"],
            algorithms=data.validated_data.get("algorithms"),
        )


class ModelsApi(APIView):
    @extend_schema(
        parameters=[SYMBOL_PARAM, TimeframeQuerySerializer],
        responses={200: ModelsOverviewSerializer},
        tags=["predictions"],
    )
    def get(self, request, symbol: str):
        symbol, query = symbol_and_query(request, symbol, TimeframeQuerySerializer)
        return Response(models_overview(symbol=symbol, **query))


class AccuracyApi(APIView):
    @extend_schema(
        parameters=[SYMBOL_PARAM, TimeframeQuerySerializer],
        responses={200: AccuracySerializer},
        tags=["predictions"],
    )
    def get(self, request, symbol: str):
        symbol, query = symbol_and_query(request, symbol, TimeframeQuerySerializer)
        return Response(predictions_accuracy(symbol=symbol, **query))


class TaskStatusApi(APIView):
    """A background task's state; visible only to the user who started it, and to staff."""

    @extend_schema(
        parameters=[OpenApiParameter("task_id", str, OpenApiParameter.PATH)],
        responses={200: TaskStatusSerializer},
        tags=["tasks"],
    )
    def get(self, request, task_id: str):
        record = TaskRecord.objects.filter(task_id=task_id[:255]).first()
        if record is None or not (request.user.is_staff or record.user_id == request.user.pk):
            raise Http404
        result = AsyncResult(record.task_id)
        state, info = result.state, result.info
        progress = stage = payload = error = None
        if state == "PROGRESS" and isinstance(info, dict):
            progress, stage = info.get("progress"), info.get("stage")
        elif state == "SUCCESS":
            progress, payload = 1.0, info
        elif state == "FAILURE":
            error = _public_error(info)
        return Response(
            {
                "task_id": record.task_id,
                "name": record.name,
                "state": state,
                "progress": progress,
                "stage": stage,
                "result": payload,
                "error": error,
            }
        )


def _public_error(info) -> str:
    """What went wrong, for the user: our own errors say it; anything else does not leak internals."""
    if isinstance(info, NotEnoughHistory):
        return str(info)
    from market.providers.errors import ProviderError

    if isinstance(info, ProviderError):
        return str(info)
    return "The task failed; staff can see the details in the task results admin."
