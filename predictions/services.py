"""Training, promotion, prediction and scoring. The models and their evaluation are pure (predictions.ml);
this module stores what they produce and decides which version is active."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import structlog
from celery import Task
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from kombu.exceptions import OperationalError

from market.bars import bar_close, bars_ahead, closed_only
from market.models import MarketData
from market.selectors import candles_frame
from market.services import candles_ensure
from market.sources import get_calendar
from market.timeframes import Timeframe
from predictions.features import WARMUP_BARS
from predictions.loading import forecaster_load
from predictions.ml import registry
from predictions.ml.comparison import Known, config_key, evaluate_config
from predictions.ml.ensemble import Ensemble
from predictions.ml.ensemble_evaluation import ensemble_train
from predictions.ml.evaluation import MIN_FOLDS, walk_forward
from predictions.ml.naive import NaiveForecaster
from predictions.models import Algorithm, Prediction, TaskRecord, TrainedModel
from tradingdash.exceptions import ServiceUnavailable
from tradingdash.metrics import PREDICTIONS_MADE

logger = structlog.get_logger(__name__)

MIN_TRAINING_ROWS = 200  # usable rows after indicator warm-up
DEFAULT_ALGORITHMS = [Algorithm.RANDOM_FOREST.value, Algorithm.SVR.value, Algorithm.LSTM.value]
_ARTIFACT_SUFFIX = {"lstm": "keras.bundle", "ensemble": "ensemble.joblib"}
_PENDING_STATES = {"PENDING", "RECEIVED", "STARTED", "PROGRESS", "RETRY"}
# `model` of prediction_generate: let selectors.model_default choose (naive when no active model beats naive).
DEFAULT_MODEL = "default"

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class NotEnoughHistory(Exception):
    needed: int
    available: int

    def __str__(self) -> str:
        return f"Training needs at least {self.needed} candles; {self.available} are stored."


class NoActiveModel(Exception):
    """No trained, active model for this symbol, timeframe, horizon and algorithm yet."""


def history_needed(horizon: int) -> int:
    return WARMUP_BARS + MIN_TRAINING_ROWS + horizon


def predictions_invalidate(symbol: str) -> None:
    cache.set(f"predictions:version:{symbol}", uuid.uuid4().hex[:12], 7 * 24 * 3600)


def predictions_cache_version(symbol: str) -> str:
    return cache.get(f"predictions:version:{symbol}") or "0"


def training_candles(*, symbol: str, timeframe: Timeframe, ensure: bool = True):
    """Closed stored candles (fetching the default history first if none was ever fetched)."""
    if ensure:
        candles_ensure(symbol=symbol, timeframe=timeframe, start=None, end=None)
    candles = candles_frame(symbol=symbol, timeframe=timeframe, limit=settings.PREDICTION_TRAINING_BARS)
    return closed_only(candles, get_calendar(), timeframe, timezone.now())


def _store_version(
    *, symbol: str, timeframe: Timeframe, horizon: int, output, extra_metrics=None
) -> TrainedModel:
    data = registry.serialize(output.forecaster)
    algorithm = output.algorithm
    metrics = {**output.evaluation.metrics, **(extra_metrics or {})}
    for _ in range(3):  # a concurrent training may take the same version number: take the next one
        try:
            with transaction.atomic():
                latest = TrainedModel.objects.filter(
                    symbol=symbol, timeframe=timeframe.value, horizon=horizon, algorithm=algorithm
                ).aggregate(v=Max("version"))["v"]
                version = (latest or 0) + 1
                trained = TrainedModel(
                    symbol=symbol,
                    timeframe=timeframe.value,
                    horizon=horizon,
                    algorithm=algorithm,
                    version=version,
                    data_start=output.data_start,
                    data_end=output.data_end,
                    n_samples=output.n_samples,
                    features=output.feature_columns,
                    hyperparameters=output.hyperparameters,
                    metrics=metrics,
                    fold_metrics=output.evaluation.fold_metrics,
                    residual_quantiles=output.evaluation.residual_quantiles,
                    artifact_sha256=registry.sha256(data),
                )
                suffix = _ARTIFACT_SUFFIX.get(algorithm, "joblib")
                trained.artifact.save(
                    f"{algorithm}-v{version}-{uuid.uuid4().hex[:8]}.{suffix}", ContentFile(data), save=False
                )
                trained.save()
                return trained
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate a model version")


def model_promote_if_better(*, trained: TrainedModel, candles=None, known: Known | None = None) -> bool:
    """Activate `trained` when its walk-forward MAE is no worse than the active version's on the same rows.

    The active version's configuration is re-run on the candles `trained` was evaluated on (`candles`), so both
    are scored on identical folds; `known` holds evaluations of this run to reuse (an identical configuration is
    not re-run). Without `candles`, both are re-run on today's stored candles.
    """
    key = {"symbol": trained.symbol, "timeframe": trained.timeframe, "horizon": trained.horizon}
    active = (
        TrainedModel.objects.filter(**key, algorithm=trained.algorithm, is_active=True)
        .exclude(pk=trained.pk)
        .first()
    )
    new_metrics, active_metrics = trained.metrics, None
    if active is not None:
        known = {} if known is None else known
        folds = int(trained.metrics.get("folds") or MIN_FOLDS)
        if candles is None:
            candles = training_candles(
                symbol=trained.symbol, timeframe=Timeframe.parse(trained.timeframe), ensure=False
            )
            new_metrics = evaluate_config(
                trained.algorithm,
                trained.hyperparameters,
                candles,
                horizon=trained.horizon,
                folds=folds,
                known=known,
            ).metrics
        try:
            active_metrics = evaluate_config(
                active.algorithm,
                active.hyperparameters,
                candles,
                horizon=trained.horizon,
                folds=folds,
                known=known,
            ).metrics
        except ValueError as exc:  # e.g. parameters this code no longer accepts: nothing to compare with
            logger.warning("active_model_not_reevaluated", model=str(active), error=str(exc))
    with transaction.atomic():
        current = (
            TrainedModel.objects.select_for_update()
            .filter(**key, algorithm=trained.algorithm, is_active=True)
            .exclude(pk=trained.pk)
            .first()
        )
        if getattr(current, "pk", None) != getattr(active, "pk", None):
            return False  # another version was activated meanwhile; ours was not compared with it
        if not registry.should_promote(new_metrics, active_metrics):
            logger.info(
                "model_not_promoted",
                model=str(trained),
                mae=new_metrics.get("mae"),
                active_mae_same_rows=(active_metrics or {}).get("mae"),
            )
            return False
        model_activate(trained=trained)
    return True


def model_activate(*, trained: TrainedModel) -> None:
    """Make `trained` the active version of its key (staff may also do this by hand in admin)."""
    with transaction.atomic():
        TrainedModel.objects.filter(
            symbol=trained.symbol,
            timeframe=trained.timeframe,
            horizon=trained.horizon,
            algorithm=trained.algorithm,
            is_active=True,
        ).exclude(pk=trained.pk).update(is_active=False)
        TrainedModel.objects.filter(pk=trained.pk).update(is_active=True)
        trained.is_active = True
    predictions_invalidate(trained.symbol)


def models_train(
    *,
    symbol: str,
    timeframe: Timeframe,
    horizon: int = 1,
    algorithms: Sequence[str] | None = None,
    params: dict | None = None,
    progress: Progress | None = None,
) -> list[TrainedModel]:
    """Walk-forward evaluate and fit each algorithm, store every version, promote the ones no worse than
    the active version on the same rows, and store an ensemble of this run's models that beat naive."""
    algorithms = list(algorithms or DEFAULT_ALGORITHMS)
    params = {**settings.PREDICTION_MODEL_PARAMS, **(params or {})}
    progress = progress or (lambda fraction, stage: None)
    candles = training_candles(symbol=symbol, timeframe=timeframe)
    needed = history_needed(horizon)
    if len(candles) < needed:
        raise NotEnoughHistory(needed=needed, available=len(candles))
    outputs, stored = [], []
    known: Known = {}  # this run's evaluations: promotion re-runs only configurations it has not evaluated
    steps = len(algorithms) + 1
    for index, algorithm in enumerate(algorithms):
        progress(index / steps, f"training {algorithm}")
        output = registry.train(algorithm, candles, horizon=horizon, params=params.get(algorithm))
        outputs.append(output)
        known[config_key(output.algorithm, output.hyperparameters)] = output.evaluation
        trained = _store_version(symbol=symbol, timeframe=timeframe, horizon=horizon, output=output)
        trained.promoted = model_promote_if_better(trained=trained, candles=candles, known=known)
        stored.append(trained)
        logger.info("model_trained", model=str(trained), mae_vs_naive=trained.metrics.get("mae_vs_naive"))
    progress(len(algorithms) / steps, "building ensemble")
    ensemble = ensemble_train(outputs)
    known[config_key(ensemble.algorithm, ensemble.hyperparameters)] = ensemble.evaluation
    trained = _store_version(
        symbol=symbol,
        timeframe=timeframe,
        horizon=horizon,
        output=ensemble,
        extra_metrics={"description": ensemble.forecaster.description},
    )
    trained.promoted = model_promote_if_better(trained=trained, candles=candles, known=known)
    stored.append(trained)
    progress(1.0, "done")
    return stored


def active_model(*, symbol: str, timeframe: Timeframe, horizon: int, algorithm: str) -> TrainedModel | None:
    return TrainedModel.objects.filter(
        symbol=symbol, timeframe=timeframe.value, horizon=horizon, algorithm=algorithm, is_active=True
    ).first()


def active_models_exist(*, symbol: str, timeframe: Timeframe, horizon: int) -> bool:
    """Whether anything was trained (and activated) for this key yet, whatever it scored."""
    return TrainedModel.objects.filter(
        symbol=symbol, timeframe=timeframe.value, horizon=horizon, is_active=True
    ).exists()


def prediction_generate(
    *,
    symbol: str,
    timeframe: Timeframe,
    horizon: int = 1,
    model: str = DEFAULT_MODEL,
    user_id: int | None = None,
) -> Prediction:
    """Forecast from the latest closed candle and store it: with the active version of `model`, with naive
    ("naive", the last close, interval from its walk-forward), or with DEFAULT_MODEL: the active version chosen
    by selectors.model_default, naive when none beats naive.

    The returned Prediction also carries `beats_naive`, `default_reason` (why the default is what it is) and
    `confidence_reason` (why confidence_score is null), for the response.
    """
    from predictions.selectors import model_default

    default_reason = None
    if model == DEFAULT_MODEL:
        trained = model_default(symbol=symbol, timeframe=timeframe, horizon=horizon)
        default_reason = _default_reason(trained)
    elif model == "naive":
        trained = None
    else:
        trained = active_model(symbol=symbol, timeframe=timeframe, horizon=horizon, algorithm=model)
        if trained is None:
            raise NoActiveModel(f"No active {model} model for {symbol} {timeframe.value} horizon {horizon}")
    candles = training_candles(symbol=symbol, timeframe=timeframe)
    if trained is None:
        evaluation = walk_forward(candles, "naive", horizon=horizon)
        forecaster, quantiles = NaiveForecaster(), evaluation.residual_quantiles
        used, version = "naive", f"naive (walk-forward on {evaluation.n_samples} rows)"
        confidence, confidence_reason = None, "naive predicts no change, so it calls no direction"
    else:
        forecaster, quantiles = forecaster_load(trained), trained.residual_quantiles
        description = trained.metrics.get("description")
        used = trained.algorithm
        version = f"{trained.algorithm} v{trained.version}" + (f" ({description})" if description else "")
        confidence, confidence_reason = _confidence(trained, forecaster)
    forecast = registry.predict(forecaster, candles, horizon=horizon, residual_quantiles=quantiles)
    calendar = get_calendar()
    prediction = Prediction.objects.create(
        symbol=symbol,
        timeframe=timeframe.value,
        horizon=horizon,
        time_horizon=f"{timeframe.value} x {horizon}",
        model_used=used,
        model_version=version[:200],
        predicted_price=forecast.predicted_price,
        confidence_score=confidence,
        lower_bound=forecast.lower,
        upper_bound=forecast.upper,
        base_price=forecast.base_price,
        base_timestamp=forecast.base_time,
        target_time=bars_ahead(calendar, timeframe, forecast.base_time, horizon),
        requested_by_id=user_id,
    )
    if trained is not None:
        prediction.trained_models.add(trained)
    prediction.beats_naive = trained.beats_naive if trained is not None else False
    prediction.default_reason = default_reason
    prediction.confidence_reason = confidence_reason
    predictions_invalidate(symbol)
    PREDICTIONS_MADE.labels(used, timeframe.value).inc()
    logger.info("prediction_made", symbol=symbol, model=prediction.model_version, horizon=horizon)
    return prediction


def _default_reason(trained: TrainedModel | None) -> str:
    if trained is None:
        return (
            "no active model beats naive on its walk-forward (MAE/naive < 1 with Diebold-Mariano p < 0.10), "
            "so the default is naive: the last close"
        )
    metrics = trained.metrics
    return (
        f"{trained.algorithm} v{trained.version} has the lowest walk-forward MAE/naive "
        f"({metrics['mae_vs_naive']:.3f}, Diebold-Mariano p = {metrics['dm_p_value']:.3f}) "
        "among the active models that beat naive"
    )


def _confidence(trained: TrainedModel, forecaster) -> tuple[float | None, str | None]:
    """The walk-forward directional accuracy, or None with the reason when there is none to give."""
    if isinstance(forecaster, Ensemble) and forecaster.is_naive:
        return None, "the ensemble fell back to naive (no member beat naive), so it calls no direction"
    value = trained.metrics.get("directional_accuracy")
    if value is None:
        return None, "the walk-forward directional accuracy is undefined for this model version"
    return float(value), None


def predictions_score(*, now=None) -> int:
    """Fill realized_price/error for predictions whose target bar has closed and is stored."""
    now = now or timezone.now()
    calendar = get_calendar()
    scored = 0
    pending = Prediction.objects.filter(realized_price__isnull=True, target_time__lte=now).order_by(
        "target_time"
    )
    for prediction in pending.iterator(chunk_size=500):
        timeframe = Timeframe.parse(prediction.timeframe)
        if bar_close(calendar, timeframe, prediction.target_time) > now:
            continue
        close = (
            MarketData.objects.filter(
                symbol=prediction.symbol, timeframe=prediction.timeframe, timestamp=prediction.target_time
            )
            .values_list("close_price", flat=True)
            .first()
        )
        if close is None:
            continue
        Prediction.objects.filter(pk=prediction.pk).update(
            realized_price=close, realized_at=prediction.target_time, error=prediction.predicted_price - close
        )
        predictions_invalidate(prediction.symbol)
        scored += 1
    return scored


# --- Background tasks started from the API


def task_in_flight(*, key: str) -> TaskRecord | None:
    """The newest task with this key that is still queued or running (within the task time limit)."""
    from celery.result import AsyncResult

    since = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    for record in TaskRecord.objects.filter(key=key, created_at__gte=since)[:3]:
        if AsyncResult(record.task_id).state in _PENDING_STATES:
            return record
    return None


def task_enqueue(*, task: Task, kwargs: dict, key: str, user_id: int | None) -> tuple[TaskRecord, bool]:
    """Start `task` unless the same work (same key) is already in flight; returns (record, created).
    A dead broker is a 503, not a 500."""
    existing = task_in_flight(key=key)
    if existing is not None:
        return existing, False
    task_id = uuid.uuid4().hex
    record = TaskRecord.objects.create(task_id=task_id, name=task.name, key=key, user_id=user_id)
    try:
        task.apply_async(kwargs=kwargs, task_id=task_id)
    except OperationalError as exc:
        record.delete()
        logger.warning("broker_unavailable", task=task.name, error=str(exc))
        raise ServiceUnavailable(
            "The task queue is unavailable; try again shortly.", code="queue_unavailable", retry_after=30
        ) from exc
    return record, True
