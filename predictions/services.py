"""Training, promotion, prediction and scoring. The models and their evaluation are pure (predictions.ml);
this module stores what they produce and decides which version is active."""

from __future__ import annotations

import math
import uuid
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from celery import Task
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Count, Max
from django.utils import timezone
from kombu.exceptions import OperationalError

from market.bars import bar_close, bars_ahead, closed_only
from market.models import MarketData
from market.providers.base import LookbackExceeded
from market.providers.errors import ProviderError
from market.selectors import candles_frame, split_ratio_between_bars
from market.services import DEFAULT_DAYS, candles_ensure, candles_ensure_current

# Re-exported: task results stored before it moved to market name this module as the error's (Celery rebuilds a
# failure from its module and class name), and the task status shows its message only when it is rebuilt as one.
from market.services import StaleMarketData as StaleMarketData
from market.sources import calendar_for_symbol
from market.symbols import InvalidSymbol
from market.timeframes import Timeframe
from predictions.features import warmup_bars
from predictions.loading import forecaster_load
from predictions.ml import registry
from predictions.ml.comparison import Known, config_key, evaluate_config
from predictions.ml.default_selection import default_selection_metrics
from predictions.ml.ensemble import Ensemble
from predictions.ml.ensemble_evaluation import ensemble_train
from predictions.ml.evaluation import MIN_FOLDS, InsufficientHistory, walk_forward
from predictions.ml.naive import NaiveForecaster
from predictions.models import TRAIN_TASK, Algorithm, Prediction, TaskRecord, TrainedModel
from tradingdash import events
from tradingdash.exceptions import ServiceUnavailable
from tradingdash.metrics import PREDICTIONS_MADE
from tradingdash.offload import offloaded

logger = structlog.get_logger(__name__)

MIN_TRAINING_ROWS = 200  # usable rows after indicator warm-up
DEFAULT_ALGORITHMS = [Algorithm.RANDOM_FOREST.value, Algorithm.SVR.value, Algorithm.LSTM.value]
_ARTIFACT_SUFFIX = {"lstm": "keras.bundle", "ensemble": "ensemble.joblib"}
# `model` of prediction_generate: let selectors.model_default choose (naive when no active model beats naive).
DEFAULT_MODEL = "default"

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class NotEnoughHistory(Exception):
    needed: int
    available: int

    # A task's failure must survive Celery's pickle check and be stored as its class and `args` (JSON), rebuilt
    # as cls(*args). Frozen, it failed the check (unpickling sets attributes) and came back wrapped: the task
    # status then hid the reason.
    def __post_init__(self) -> None:
        object.__setattr__(self, "args", (self.needed, self.available))

    def __reduce__(self):
        return type(self), (self.needed, self.available)

    def __str__(self) -> str:
        return f"Training needs at least {self.needed} candles; {self.available} are stored."


class WorkerLost(Exception):
    """A task whose worker died under it on every delivery (out of memory, or killed) is not run again."""


# Deliveries a task may start after the worker running it was lost (acks_late with reject_on_worker_lost hands the
# message out again at once): an LSTM training that runs its worker out of memory would otherwise be delivered,
# kill its worker and be delivered again for ever, storing the versions it finished before dying each time.
TASK_MAX_STARTS = 3


class TaskStarted:
    """Count the starts of task `task_id` that never ended (the worker lost under it) and refuse the next start
    beyond TASK_MAX_STARTS with WorkerLost. A run that ends (returns, fails or asks for a retry) clears the
    count. Without a shared cache (Redis down) the starts cannot be counted and nothing is refused.

    A class, not @contextmanager: re-raising through a generator sets the exception's traceback, which our
    frozen dataclass errors (NotEnoughHistory) refuse."""

    def __init__(self, *, task_id: str | None) -> None:
        self.key = f"predictions:task-starts:{task_id}" if task_id is not None else None
        self.task_id = task_id

    def __enter__(self) -> None:
        if self.key is None:
            return
        cache.add(self.key, 0, timeout=24 * 3600)
        try:
            starts = cache.incr(self.key)
        except ValueError:  # expired between add and incr
            starts = None
        if starts is not None and starts > TASK_MAX_STARTS:
            cache.delete(self.key)
            logger.error("task_worker_lost_repeatedly", task_id=self.task_id, starts=starts - 1)
            raise WorkerLost(
                f"The worker running this task was lost {starts - 1} times (out of memory, or killed) before it "
                "could finish; it is not run again. Staff: check the ML workers' memory. Or ask for another model."
            )

    def __exit__(self, exc_type, exc, traceback) -> bool:
        # An Exception is the task ending (failed, or retried); anything else (the process going down) is not.
        if self.key is not None and (exc_type is None or issubclass(exc_type, Exception)):
            cache.delete(self.key)
        return False


class NoActiveModel(Exception):
    """No trained, active model for this symbol, timeframe, horizon and algorithm yet."""


class RequesterDeleted(Exception):
    """The user a prediction was asked for was deleted meanwhile: their predictions go with them, so none is made."""


class ModelUnavailable(Exception):
    """A stored model version whose artifact cannot be loaded here: its file is missing (deleted, or MEDIA_ROOT
    not shared with the worker that trained it) or does not match its recorded SHA-256."""


# What the provider and the stored candles answer with, which the API's exception handler maps (404 for
# SymbolNotFound, 503 for the other ProviderErrors and StaleMarketData, 400): raised again as they are in the web
# worker when the work ran in a compute worker.
MARKET_ERRORS = (ProviderError, StaleMarketData, InvalidSymbol, LookbackExceeded)
# And what a prediction answers with (predictions.api.views maps the first ones to 422 and 503).
PREDICT_ERRORS = (InsufficientHistory, ModelUnavailable, NoActiveModel, RequesterDeleted, *MARKET_ERRORS)


def history_needed(horizon: int) -> int:
    return warmup_bars() + MIN_TRAINING_ROWS + horizon


def predictions_invalidate(symbol: str) -> None:
    cache.set(f"predictions:version:{symbol}", uuid.uuid4().hex[:12], 7 * 24 * 3600)


def predictions_cache_version(symbol: str) -> str:
    return cache.get(f"predictions:version:{symbol}") or "0"


def training_candles(*, symbol: str, timeframe: Timeframe, ensure: bool = True, needed: int = 0):
    """Closed, final stored candles (a bar stored before its close holds partial values and is left out), fetching the default history first if none was ever fetched, and fetching back to
    the first-fetch depth when fewer than `needed` are stored (e.g. only a recent range was ever asked for)."""
    if ensure:
        candles_ensure(symbol=symbol, timeframe=timeframe, start=None, end=None)
    candles = _closed(symbol=symbol, timeframe=timeframe)
    if ensure and len(candles) < needed:
        start = timezone.now() - timedelta(days=DEFAULT_DAYS[timeframe])
        candles_ensure(symbol=symbol, timeframe=timeframe, start=start, end=None)
        candles = _closed(symbol=symbol, timeframe=timeframe)
    return candles


def forecast_candles(*, symbol: str, timeframe: Timeframe):
    """The candles a forecast is made from: training_candles whose last bar is the latest that has closed on the
    exchange's calendar, else StaleMarketData (market.services.candles_ensure_current): a "forecast" from them
    would target a bar whose close is already past."""
    candles_ensure_current(
        symbol=symbol,
        timeframe=timeframe,
        consequence="Cannot forecast: the bar it would predict has already closed.",
    )
    return _closed(symbol=symbol, timeframe=timeframe)


def _closed(*, symbol: str, timeframe: Timeframe):
    # Split-adjusted: a split day is no crash to the features and models (the last bar is as traded).
    candles = candles_frame(
        symbol=symbol,
        timeframe=timeframe,
        limit=settings.PREDICTION_TRAINING_BARS,
        final_only=True,
        adjust="splits",
    )
    return closed_only(candles, calendar_for_symbol(symbol), timeframe, timezone.now())


def _window_sources(*, symbol: str, timeframe: str, candles) -> list[str]:
    """The providers of the stored candles from the first to the last bar of `candles`."""
    return _sources_between(
        symbol=symbol,
        timeframe=timeframe,
        start=candles.index[0].to_pydatetime(),
        end=candles.index[-1].to_pydatetime(),
    )


def _sources_between(*, symbol: str, timeframe: str, start: datetime, end: datetime) -> list[str]:
    return sorted(
        MarketData.objects.filter(
            symbol=symbol, timeframe=timeframe, timestamp__gte=start, timestamp__lte=end
        )
        .values_list("source", flat=True)
        .distinct()
    )


def model_data_changed(trained: TrainedModel) -> str | None:
    """Why `trained` no longer describes the stored candles of its training window, or None: they now come from
    another provider (a demo database's synthetic candles replaced by Yahoo's when MARKET_DATA_PROVIDER
    changed), so its walk-forward figures (beats naive, confidence, interval) are those of other data. Versions
    stored before their sources were recorded cannot tell: None."""
    recorded = trained.metrics.get("data_sources")
    if not recorded:
        return None
    now = _sources_between(
        symbol=trained.symbol, timeframe=trained.timeframe, start=trained.data_start, end=trained.data_end
    )
    if now == sorted(recorded):
        return None
    return (
        f"trained and evaluated on {', '.join(recorded)} candles, and the stored candles of its training window "
        f"are now from {', '.join(now) or 'no provider (deleted)'}"
    )


def _window_fingerprint(*, symbol: str, timeframe: str, start: datetime, end: datetime) -> dict:
    """A cheap fingerprint of the stored bars in [start, end]: how many there are and when the latest of them was
    written. Any bar of the window rewritten or filled in (a write stamps `updated_at`) or deleted changes it."""
    window = MarketData.objects.filter(
        symbol=symbol, timeframe=timeframe, timestamp__gte=start, timestamp__lte=end
    ).aggregate(bars=Count("id"), written=Max("updated_at"))
    return {
        "bars": window["bars"],
        "written_at": window["written"].isoformat() if window["written"] else None,
    }


def models_flag_revised(*, symbol: str, timeframe: str, stamps: Sequence[datetime]) -> int:
    """Mark the versions whose training window (data_start to data_end) holds one of `stamps`, bars written or
    deleted after they were trained: their walk-forward figures no longer describe the stored candles. Bars
    appended after a window leave it alone. The first revision's time is kept: running it again (the same
    announcement delivered twice) changes nothing. Returns how many versions were marked."""
    if not stamps:
        return 0
    stamps = sorted(stamps)
    candidates = TrainedModel.objects.filter(
        symbol=symbol,
        timeframe=timeframe,
        data_revised_at__isnull=True,
        data_start__lte=stamps[-1],
        data_end__gte=stamps[0],
    ).values_list("pk", "data_start", "data_end")
    revised = []
    for pk, start, end in candidates:
        first_inside = bisect_left(stamps, start)
        if first_inside < len(stamps) and stamps[first_inside] <= end:
            revised.append(pk)
    if not revised:
        return 0
    marked = TrainedModel.objects.filter(pk__in=revised, data_revised_at__isnull=True).update(
        data_revised_at=timezone.now()
    )
    logger.info(
        "models_data_revised",
        symbol=symbol,
        timeframe=timeframe,
        models=marked,
        first=stamps[0].isoformat(),
        last=stamps[-1].isoformat(),
    )
    return marked


def models_flag_readjusted(*, symbol: str, before: datetime) -> int:
    """A split or bonus going ex at `before` (or earlier) was entered, changed or deleted after these versions were
    trained: every split-adjusted price before its ex-date is divided by another ratio now, so the versions of any
    timeframe whose training window starts before it were trained and evaluated on other candles than a read gives
    (training reads them split-adjusted: _closed). Marked as models_flag_revised marks them; returns how many."""
    marked = TrainedModel.objects.filter(
        symbol=symbol, data_revised_at__isnull=True, data_start__lt=before
    ).update(data_revised_at=timezone.now())
    if marked:
        logger.info("models_data_readjusted", symbol=symbol, before=before.isoformat(), models=marked)
    return marked


def _revised_warning(trained: TrainedModel) -> str:
    """What a prediction by a version marked by models_flag_revised must say; days in the exchange's clock (a
    daily bar opens at its local midnight, the day before in UTC east of Greenwich)."""
    tz = calendar_for_symbol(trained.symbol).tz
    first, last = trained.data_start.astimezone(tz).date(), trained.data_end.astimezone(tz).date()
    return (
        f"{trained.algorithm} v{trained.version} was trained and evaluated on candles of which some, between "
        f"{first} and {last}, were rewritten, filled in, deleted or adjusted for a split or bonus entered after it "
        f"read them (first seen "
        f"{trained.data_revised_at:%Y-%m-%d %H:%M} UTC): its confidence and interval describe the bars as they "
        "were. Retraining (nightly, or staff) makes a version on the stored ones."
    )


def _store_version(
    *, symbol: str, timeframe: Timeframe, horizon: int, output, extra_metrics=None, task_id: str | None = None
) -> TrainedModel:
    """Store a version of an unfinished run (inactive, with the checkpoint its run resumes from).

    Raises VersionStoredElsewhere when the run's task already has a version of this algorithm: another worker
    holding the same task (a redelivery while this one still runs) stored it first."""
    data = registry.serialize(output.forecaster)
    algorithm = output.algorithm
    metrics = {**output.evaluation.metrics, **(extra_metrics or {})}
    key = {"symbol": symbol, "timeframe": timeframe.value, "horizon": horizon, "algorithm": algorithm}
    for _ in range(3):  # a concurrent training may take the same version number: take the next one
        trained = None
        try:
            with transaction.atomic():
                latest = TrainedModel.objects.filter(**key).aggregate(v=Max("version"))["v"]
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
                    training_task_id=task_id or "",
                    training_complete=False,
                    checkpoint=_checkpoint(output.evaluation),
                )
                suffix = _ARTIFACT_SUFFIX.get(algorithm, "joblib")
                trained.artifact.save(
                    f"{algorithm}-v{version}-{uuid.uuid4().hex[:8]}.{suffix}", ContentFile(data), save=False
                )
                trained.save()
                return trained
        except IntegrityError:
            # The file written for the refused row goes with it: no file without its version.
            if trained is not None and trained.artifact:
                trained.artifact.delete(save=False)
            held = TrainedModel.objects.filter(**key, training_task_id=task_id).first() if task_id else None
            if held is not None:
                raise VersionStoredElsewhere(held) from None
    raise RuntimeError("could not allocate a model version")


class TrainingHeldElsewhere(Exception):
    """Another worker holds the same training task and the candles of its run changed since it read them: its
    unfinished versions are its own to finish or give up, not this worker's to discard. The task is retried: by
    then the other has finished the run (returned as done) or was lost (resumed or trained again)."""


class VersionStoredElsewhere(Exception):
    """Another worker holding the same training task stored this algorithm's version first (the database keeps
    one per task and algorithm: predictions_one_version_per_training)."""

    def __init__(self, trained: TrainedModel):
        super().__init__(str(trained))
        self.trained = trained


def _checkpoint(evaluation) -> dict:
    """An Evaluation as JSON, its out-of-sample rows included (exact floats: the resumed ensemble is the one an
    uninterrupted run builds)."""
    rows = evaluation.out_of_sample
    return {
        "evaluation": evaluation.to_dict(),
        "out_of_sample": {
            "index": [moment.isoformat() for moment in rows.index],
            "unit": rows.index.unit,
            "name": rows.index.name,
            "columns": {name: rows[name].tolist() for name in rows.columns},
        },
    }


def _output_resumed(trained: TrainedModel):
    """The TrainOutput a run stored as `trained` before it was lost: its fitted forecaster and its evaluation."""
    import pandas as pd

    from predictions.ml.evaluation import Evaluation
    from predictions.ml.registry import TrainOutput

    saved = trained.checkpoint
    rows = saved["out_of_sample"]
    index = pd.DatetimeIndex(pd.to_datetime(rows["index"], utc=True), name=rows["name"]).as_unit(rows["unit"])
    fields = dict(saved["evaluation"])
    evaluation = Evaluation(
        **{
            **fields,
            "data_start": datetime.fromisoformat(fields["data_start"]),
            "data_end": datetime.fromisoformat(fields["data_end"]),
        },
        out_of_sample=pd.DataFrame(rows["columns"], index=index),
    )
    return TrainOutput(
        algorithm=trained.algorithm,
        horizon=trained.horizon,
        forecaster=forecaster_load(trained),
        evaluation=evaluation,
        feature_columns=list(trained.features),
        hyperparameters=trained.hyperparameters,
        n_samples=trained.n_samples,
        data_start=trained.data_start,
        data_end=trained.data_end,
    )


def _run_candles(*, trained: TrainedModel):
    """The candles the run that stored `trained` was training on, so that what it trains after resuming is
    evaluated on the same rows (promotion and the ensemble compare them row by row); None when they are no
    longer stored as they were (bars deleted or added inside the window)."""
    from predictions.features import build_dataset

    candles = candles_frame(
        symbol=trained.symbol,
        timeframe=Timeframe.parse(trained.timeframe),
        end=trained.data_end + timedelta(microseconds=1),
        limit=settings.PREDICTION_TRAINING_BARS,
        final_only=True,
        adjust="splits",
    )
    candles = candles[candles.index >= trained.data_start]
    if (
        candles.empty
        or candles.index[0] != trained.data_start
        or candles.index[-1] != trained.data_end
        or len(build_dataset(candles, trained.horizon)[0]) != trained.n_samples
    ):
        return None
    return candles


def _run_discard(versions: Sequence[TrainedModel]) -> None:
    """Delete the versions of an unfinished run that cannot be resumed, and their files: inactive, nobody is
    served them. One promoted when the run was lost during its promotions, or activated by staff, stays, and no
    longer belongs to the run: the versions the run stores instead would be refused as second versions of its
    task (predictions_one_version_per_training)."""
    unfinished = TrainedModel.objects.filter(pk__in=[m.pk for m in versions], training_complete=False)
    discarded = unfinished.filter(is_active=False)
    for model in discarded:
        model.artifact.delete(save=False)
    discarded.delete()
    unfinished.filter(is_active=True).update(training_task_id="")


# How long an unfinished run's versions wait to be resumed: a training task is delivered again at most a few
# times, each after the broker's visibility timeout (1 h) and the task time limit (30 min), and its followers'
# tasks read EXPIRED after a day; past two days nothing will resume it.
UNFINISHED_RUN_KEPT = timedelta(days=2)


def models_prune_unfinished(*, now: datetime | None = None) -> int:
    """Delete the versions (and their files) of training runs that stopped half-way and that nothing will resume:
    unfinished, inactive, stored more than UNFINISHED_RUN_KEPT ago. A run by `manage.py train_models` (no task
    to deliver it again) or one that failed on every delivery left them, each with its checkpoint (~100 KB),
    listed in the admin as unfinished. Returns how many were deleted; safe to repeat."""
    cutoff = (now or timezone.now()) - UNFINISHED_RUN_KEPT
    stale = list(TrainedModel.objects.filter(training_complete=False, is_active=False, trained_at__lt=cutoff))
    _run_discard(stale)
    if stale:
        logger.info("unfinished_models_pruned", models=[str(model) for model in stale])
    return len(stale)


def model_promote_if_better(*, trained: TrainedModel, candles=None, known: Known | None = None) -> bool:
    """Activate `trained` when its walk-forward MAE is no worse than the active version's on the same rows.

    The active version's configuration is re-run on the candles `trained` was evaluated on (`candles`), so both
    are scored on identical folds; `known` holds evaluations of this run to reuse (an identical configuration is
    not re-run). Without `candles`, both are re-run on today's stored candles.
    """
    if _already_active(trained):
        return True
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
        if _already_active(trained):
            return True
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


def _already_active(trained: TrainedModel) -> bool:
    """Promoted already, by the other worker holding its training task (both promote the run's versions): promoting
    it again changes nothing and must not compare it with itself."""
    if TrainedModel.objects.filter(pk=trained.pk, is_active=True).exists():
        trained.is_active = True
        return True
    return False


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
    task_id: str | None = None,
) -> list[TrainedModel]:
    """Walk-forward evaluate and fit each algorithm, store every version, then promote the ones no worse than
    the active version on the same rows, and store an ensemble of this run's models that beat naive.

    Versions are stored inactive and unfinished (`training_complete` false) as each is trained, and promoted
    only once the run has stored them all: a run lost half-way (its worker killed) leaves versions that nobody
    is served. Run by the task `task_id`, it trains once however often that task runs: a retry or a redelivery
    returns the versions of the finished run (`promoted` read back as whether each is active), and resumes an
    unfinished one on the same candles, training only the algorithms it had not stored yet.

    Two workers may hold the task at once (redelivered while it still runs: tradingdash.W006). The database keeps
    one version per task and algorithm; the worker whose insert is refused starts over as a redelivery would,
    taking the versions stored meanwhile (or the finished run), so nothing is stored twice and no lock is held
    while training."""
    kwargs = {"symbol": symbol, "timeframe": timeframe, "horizon": horizon, "algorithms": algorithms}
    kwargs |= {"params": params, "progress": progress, "task_id": task_id}
    # Each start over follows a version the other worker stored: at most one per algorithm and the ensemble.
    for _ in range(len(algorithms or DEFAULT_ALGORITHMS) + 1):
        try:
            return _models_train_run(**kwargs)
        except VersionStoredElsewhere as lost:
            logger.info("training_version_stored_elsewhere", task_id=task_id, model=str(lost.trained))
            kwargs["held_elsewhere"] = True
    return _models_train_run(**kwargs)


def _models_train_run(
    *,
    symbol: str,
    timeframe: Timeframe,
    horizon: int,
    algorithms: Sequence[str] | None,
    params: dict | None,
    progress: Progress | None,
    task_id: str | None,
    held_elsewhere: bool = False,
) -> list[TrainedModel]:
    """One pass of models_train: what the task's stored versions leave to do, done. `held_elsewhere`: another
    worker is known to hold the task (it stored a version this one was about to)."""
    resumed: dict[str, TrainedModel] = {}
    if task_id is not None:
        ran = list(TrainedModel.objects.filter(training_task_id=task_id).order_by("pk"))
        if ran and all(model.training_complete for model in ran):
            for model in ran:
                model.promoted = model.is_active
            logger.info("training_already_done", task_id=task_id, models=[str(m) for m in ran])
            return ran
        resumed = {model.algorithm: model for model in ran if not model.training_complete}
    algorithms = list(algorithms or DEFAULT_ALGORITHMS)
    params = {**settings.PREDICTION_MODEL_PARAMS, **(params or {})}
    progress = progress or (lambda fraction, stage: None)
    candles = _run_candles(trained=next(iter(resumed.values()))) if resumed else None
    if resumed and candles is None:
        if held_elsewhere:
            raise TrainingHeldElsewhere(task_id)
        logger.warning("training_not_resumed", task_id=task_id, reason="its candles changed")
        _run_discard(list(resumed.values()))
        resumed = {}
    if candles is None:
        needed = history_needed(horizon)
        candles = training_candles(symbol=symbol, timeframe=timeframe, needed=needed)
        if len(candles) < needed:
            raise NotEnoughHistory(needed=needed, available=len(candles))
    # Where the candles came from: a version describes those candles only (selectors... model_data_changed), as
    # they were when read (a revision announced after its versions are stored marks them: models_flag_revised).
    window = {
        "symbol": symbol,
        "timeframe": timeframe.value,
        "start": candles.index[0].to_pydatetime(),
        "end": candles.index[-1].to_pydatetime(),
    }
    read = _window_fingerprint(**window)
    provenance = {
        "data_sources": _window_sources(symbol=symbol, timeframe=timeframe.value, candles=candles),
        "data_fingerprint": read,
    }
    outputs, stored = [], []
    known: Known = {}  # this run's evaluations: promotion re-runs only configurations it has not evaluated
    steps = len(algorithms) + 1
    trained_now = False
    for index, algorithm in enumerate(algorithms):
        output, trained = _resume(resumed.get(algorithm))
        if output is None:
            trained_now = True
            progress(index / steps, f"training {algorithm}")
            output = registry.train(algorithm, candles, horizon=horizon, params=params.get(algorithm))
            trained = _store_version(
                symbol=symbol,
                timeframe=timeframe,
                horizon=horizon,
                output=output,
                extra_metrics=provenance,
                task_id=task_id,
            )
            logger.info("model_trained", model=str(trained), mae_vs_naive=trained.metrics.get("mae_vs_naive"))
        outputs.append(output)
        known[config_key(output.algorithm, output.hyperparameters)] = output.evaluation
        stored.append(trained)
    progress(len(algorithms) / steps, "building ensemble")
    # The stored ensemble is resumed only with the very members it was built from.
    if trained_now and Algorithm.ENSEMBLE.value in resumed:
        _run_discard([resumed[Algorithm.ENSEMBLE.value]])
    ensemble, trained = (None, None) if trained_now else _resume(resumed.get(Algorithm.ENSEMBLE.value))
    if ensemble is None:
        ensemble = ensemble_train(outputs)
        trained = _store_version(
            symbol=symbol,
            timeframe=timeframe,
            horizon=horizon,
            output=ensemble,
            extra_metrics={"description": ensemble.forecaster.description, **provenance},
            task_id=task_id,
        )
    known[config_key(ensemble.algorithm, ensemble.hyperparameters)] = ensemble.evaluation
    stored.append(trained)
    progress(len(algorithms) / steps, "promoting the versions")
    for model in stored:  # only now: every version of the run is stored
        model.promoted = model_promote_if_better(trained=model, candles=candles, known=known)
    progress(len(algorithms) / steps, "scoring the default model's choice")
    selection = default_selection_store(
        symbol=symbol, timeframe=timeframe, horizon=horizon, candles=candles, known=known
    )
    for model in stored:
        if selection is not None and model.pk in selection["candidates"]:
            model.metrics = {**model.metrics, "default_selection": selection}
    if _window_fingerprint(**window) != read:
        # Revised while this run trained, before its versions were stored for the announcement to find them.
        revised_at = timezone.now()
        TrainedModel.objects.filter(
            pk__in=[model.pk for model in stored], data_revised_at__isnull=True
        ).update(data_revised_at=revised_at)
        for model in stored:
            model.data_revised_at = model.data_revised_at or revised_at
        logger.info("models_data_revised", symbol=symbol, timeframe=timeframe.value, models=len(stored))
    # Last: only a finished run is found again as such.
    TrainedModel.objects.filter(pk__in=[model.pk for model in stored]).update(
        training_complete=True, checkpoint=None
    )
    for model in stored:
        model.training_complete, model.checkpoint = True, None
    progress(1.0, "done")
    return stored


def _resume(trained: TrainedModel | None):
    """(TrainOutput, version) of an algorithm the run stored before it was lost; (None, None) to train it, also
    when its artifact can no longer be loaded (that version is then deleted: it was never active)."""
    if trained is None:
        return None, None
    try:
        output = _output_resumed(trained)
    except (OSError, registry.ArtifactIntegrityError, KeyError, TypeError) as exc:
        logger.warning("model_not_resumed", model=str(trained), error=str(exc))
        _run_discard([trained])
        return None, None
    logger.info("model_training_resumed", model=str(trained))
    return output, trained


def default_selection_store(
    *, symbol: str, timeframe: Timeframe, horizon: int, candles, known: Known | None = None
) -> dict | None:
    """Record, on every active version of the key, the out-of-sample figures of choosing the default among them
    (predictions.ml.default_selection: chosen on earlier folds, scored on later ones) and which versions it chose
    among. selectors.model_default reports these, not the chosen version's own walk-forward, which is the best
    of several on the very rows that chose it. Each active configuration is evaluated on `candles` (reusing
    `known`); one this code cannot re-run leaves the figures unrecorded, and the default is then naive."""
    active = list(
        TrainedModel.objects.filter(
            symbol=symbol, timeframe=timeframe.value, horizon=horizon, is_active=True
        ).exclude(algorithm=Algorithm.NAIVE)
    )
    if not active:
        return None
    known = {} if known is None else known
    frames = {}
    for model in active:
        try:
            evaluation = evaluate_config(
                model.algorithm,
                model.hyperparameters,
                candles,
                horizon=horizon,
                folds=int(model.metrics.get("folds") or MIN_FOLDS),
                known=known,
            )
        except ValueError as exc:
            logger.warning("default_selection_not_scored", model=str(model), error=str(exc))
            return None
        frames[model.pk] = evaluation.out_of_sample
    try:
        selection = default_selection_metrics(frames, horizon)
    except ValueError as exc:  # evaluated on different rows (e.g. a different fold count): nothing to compare
        logger.warning("default_selection_not_scored", symbol=symbol, error=str(exc))
        return None
    selection["candidates"] = sorted(frames)
    selection["data_end"] = candles.index[-1].isoformat()
    for model in active:
        model.metrics = {**model.metrics, "default_selection": selection}
        TrainedModel.objects.filter(pk=model.pk).update(metrics=model.metrics)
    predictions_invalidate(symbol)
    return selection


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
    task_id: str | None = None,
) -> Prediction:
    """Forecast from the latest closed candle and store it: with the active version of `model`, with naive
    ("naive", the last close, interval from its walk-forward), or with DEFAULT_MODEL: the active version chosen
    by selectors.model_default, naive when none beats naive. Made by the task `task_id`, it is stored (and
    announced) once however often that task is delivered: a redelivery returns the stored prediction.

    The returned Prediction also carries `beats_naive`, `default_reason` (why the default is what it is),
    `confidence_reason` (why confidence_score is null) and `warnings` (a model whose training window was revised
    since it was trained: served, saying so), for the response.
    """
    from predictions.selectors import model_default

    default_reason = None
    if model == DEFAULT_MODEL:
        trained = model_default(symbol=symbol, timeframe=timeframe, horizon=horizon)
        changed = model_data_changed(trained) if trained is not None else None
        if changed:
            default_reason = (
                f"the default would be {trained.algorithm} v{trained.version}, but it was {changed}: its "
                "figures describe other data, so the default is naive (the last close) until it is retrained"
            )
            trained = None
        else:
            default_reason = _default_reason(trained)
    elif model == "naive":
        trained = None
    else:
        trained = active_model(symbol=symbol, timeframe=timeframe, horizon=horizon, algorithm=model)
        if trained is None:
            raise NoActiveModel(f"No active {model} model for {symbol} {timeframe.value} horizon {horizon}")
        changed = model_data_changed(trained)
        if changed:
            raise ModelUnavailable(
                f"The {trained.algorithm} v{trained.version} model of {symbol} was {changed}: its walk-forward "
                "figures are not this data's. Retrain it, or ask for model naive."
            )
    candles = forecast_candles(symbol=symbol, timeframe=timeframe)
    if trained is None:
        evaluation = walk_forward(candles, "naive", horizon=horizon)
        forecaster, quantiles = NaiveForecaster(), evaluation.residual_quantiles
        used, version = "naive", f"naive (walk-forward on {evaluation.n_samples} rows)"
        confidence, confidence_reason = None, "naive predicts no change, so it calls no direction"
    else:
        try:
            forecaster, quantiles = forecaster_load(trained), trained.residual_quantiles
        except (OSError, registry.ArtifactIntegrityError) as exc:
            logger.warning("model_artifact_unavailable", model_id=trained.pk, error=str(exc))
            why = "altered" if isinstance(exc, registry.ArtifactIntegrityError) else "missing or unreadable"
            raise ModelUnavailable(
                f"The {trained.algorithm} v{trained.version} model of {symbol} cannot be loaded: its artifact file "
                f"is {why}. Retrain it, or ask for model naive."
            ) from exc
        description = trained.metrics.get("description")
        used = trained.algorithm
        version = f"{trained.algorithm} v{trained.version}" + (f" ({description})" if description else "")
        confidence, confidence_reason = _confidence(trained, forecaster)
        if model == DEFAULT_MODEL:
            # The chosen model's own directional accuracy is measured on the rows that chose it: report the
            # choice's, on the folds it did not see.
            confidence = trained.default_selection.get("directional_accuracy")
            confidence_reason = (
                None
                if confidence is not None
                else "choosing the default never called a direction on the folds it did not see"
            )
    forecast = registry.predict(forecaster, candles, horizon=horizon, residual_quantiles=quantiles)
    calendar = calendar_for_symbol(symbol)
    values = {
        "symbol": symbol,
        "timeframe": timeframe.value,
        "horizon": horizon,
        "time_horizon": f"{timeframe.value} x {horizon}",
        "model_used": used,
        "model_version": version[:200],
        "predicted_price": forecast.predicted_price,
        "confidence_score": confidence,
        "lower_bound": forecast.lower,
        "upper_bound": forecast.upper,
        "base_price": forecast.base_price,
        "base_timestamp": forecast.base_time,
        "target_time": bars_ahead(calendar, timeframe, forecast.base_time, horizon),
        "requested_by_id": user_id,
        "source": _bar_source(symbol=symbol, timeframe=timeframe.value, timestamp=forecast.base_time),
    }
    with transaction.atomic():
        # Locked, so the account cannot go between this check and the commit (its predictions go with it).
        if user_id is not None and not _requester_locked(user_id):
            raise RequesterDeleted(f"User {user_id} was deleted; no prediction is made for them.")
        if task_id is None:
            prediction, created = Prediction.objects.create(**values), True
        else:
            prediction, created = Prediction.objects.get_or_create(task_id=task_id, defaults=values)
        if created and trained is not None:
            prediction.trained_models.add(trained)
    prediction.beats_naive = trained.beats_naive if trained is not None else False
    prediction.warnings = (
        [_revised_warning(trained)] if trained is not None and trained.data_revised_at is not None else []
    )
    prediction.default_reason = default_reason
    prediction.confidence_reason = confidence_reason
    if not created:  # the task delivered again: stored and announced the first time
        logger.info("prediction_already_made", symbol=symbol, task_id=task_id, prediction_id=prediction.pk)
        return prediction
    predictions_invalidate(symbol)
    events.announce(
        events.PredictionStored(
            prediction_id=prediction.pk, symbol=symbol, timeframe=timeframe.value, user_id=user_id
        )
    )
    PREDICTIONS_MADE.labels(used, timeframe.value).inc()
    logger.info("prediction_made", symbol=symbol, model=prediction.model_version, horizon=horizon)
    return prediction


def _requester_locked(user_id: int) -> bool:
    """Whether the user exists, holding their row against deletion until the transaction ends."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.select_for_update(no_key=True).filter(pk=user_id).exists()


def _bar_source(*, symbol: str, timeframe: str, timestamp: datetime) -> str:
    """Which provider the bar a prediction is made from came from, so a prediction on generated (synthetic)
    candles says so, as the candles themselves do."""
    return (
        MarketData.objects.filter(symbol=symbol, timeframe=timeframe, timestamp=timestamp)
        .values_list("source", flat=True)
        .first()
    ) or ""


def _final_close(prediction: Prediction) -> float | None:
    """The close of the prediction's target bar, if that bar is stored final (never a partial bar's close), in
    the prices of the prediction's base bar: times the ratio of a split going ex in between."""
    return _final_close_at(
        symbol=prediction.symbol,
        timeframe=prediction.timeframe,
        base_time=prediction.base_timestamp,
        target_time=prediction.target_time,
    )


def _final_close_at(
    *, symbol: str, timeframe: str, base_time: datetime, target_time: datetime
) -> float | None:
    close = (
        MarketData.objects.filter(symbol=symbol, timeframe=timeframe, timestamp=target_time, final=True)
        .values_list("close_price", flat=True)
        .first()
    )
    if close is None:
        return None
    return close * split_ratio_between_bars(symbol=symbol, earlier=base_time, later=target_time)


def _realized_at(*, symbol: str, timeframe: str, target_time: datetime) -> datetime:
    """When a target bar's close was realized: the bar's close on its exchange's calendar (a daily bar's is the
    session close, not the local midnight it opens at)."""
    return bar_close(calendar_for_symbol(symbol), Timeframe.parse(timeframe), target_time)


def _record_score(prediction: Prediction, close: float) -> None:
    realized_at = _realized_at(
        symbol=prediction.symbol, timeframe=prediction.timeframe, target_time=prediction.target_time
    )
    Prediction.objects.filter(pk=prediction.pk).update(
        realized_price=close, realized_at=realized_at, error=prediction.predicted_price - close
    )
    predictions_invalidate(prediction.symbol)
    events.announce(
        events.PredictionStored(
            prediction_id=prediction.pk,
            symbol=prediction.symbol,
            timeframe=prediction.timeframe,
            user_id=prediction.requested_by_id,
            scored=True,
        )
    )


def _default_reason(trained: TrainedModel | None) -> str:
    if trained is None:
        return (
            "no active model beats naive on its walk-forward (MAE/naive < 1 with Diebold-Mariano p < 0.10), "
            "so the default is naive: the last close"
        )
    selection = trained.default_selection
    return (
        f"{trained.algorithm} v{trained.version} has the lowest walk-forward MAE/naive among the active models "
        "that beat naive; choosing the default that way, on earlier walk-forward folds and scored on the later "
        f"ones it did not see, gives MAE/naive {selection['mae_vs_naive']:.3f} "
        f"(Diebold-Mariano p = {selection['dm_p_value']:.3f}, {selection['n_samples']} rows)"
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
    """Fill realized_price/error for predictions whose target bar has closed (on the symbol's exchange calendar)
    and is stored final."""
    now = now or timezone.now()
    calendars = {}
    scored = 0
    pending = Prediction.objects.filter(realized_price__isnull=True, target_time__lte=now).order_by(
        "target_time"
    )
    for prediction in pending.iterator(chunk_size=500):
        timeframe = Timeframe.parse(prediction.timeframe)
        if prediction.symbol not in calendars:
            calendars[prediction.symbol] = calendar_for_symbol(prediction.symbol)
        if bar_close(calendars[prediction.symbol], timeframe, prediction.target_time) > now:
            continue
        close = _final_close(prediction)
        if close is None:
            continue
        _record_score(prediction, close)
        scored += 1
    return scored


def predictions_rescore(*, symbol: str, timeframe: str, first: datetime, last: datetime) -> int:
    """Score again the predictions whose target bar lies in [first, last] and was just (re)written: a partial bar
    completed (turned final) or a final bar corrected by the provider. Returns how many changed."""
    rescored = 0
    targets = Prediction.objects.filter(
        symbol=symbol, timeframe=timeframe, target_time__gte=first, target_time__lte=last
    )
    for prediction in targets.iterator(chunk_size=500):
        close = _final_close(prediction)
        if close is None or close == prediction.realized_price:
            continue
        _record_score(prediction, close)
        rescored += 1
    if rescored:
        logger.info("predictions_rescored", symbol=symbol, timeframe=timeframe, count=rescored)
    return rescored


# --- Background tasks started from the API


@dataclass(frozen=True)
class Queued:
    """The task that will make what was asked for; `joined` when it was already in flight for this user, and
    `following` when it starts after another user's queued training."""

    task: TaskRecord
    joined: bool = False
    following: bool = False


class TrainingNotAllowed(Exception):
    """A non-staff user asked for a model of a symbol outside the catalogue."""


@dataclass(frozen=True)
class TrainingQuotaExceeded(Exception):
    limit: int
    retry_after: int

    def __str__(self) -> str:
        return (
            f"You have started {self.limit} trainings in the last 24 hours, the daily limit; "
            f"try again in {self.retry_after} seconds."
        )


PREDICT_TASK = "predictions.generate_prediction"


def task_in_flight(*, key: str) -> TaskRecord | None:
    """The newest task with this key that is still queued (within the task time limit), running, or queued
    again after its worker was lost, as its owner's status reports it (selectors.task_pending): a follower
    whose training failed or was cancelled will never start. Joining a task re-queued after a lost worker, not
    starting another, keeps the same model from being trained twice when the broker hands it out again."""
    from predictions.selectors import task_pending

    for record in TaskRecord.objects.select_related("follows").filter(key=key)[:3]:
        if task_pending(record=record):
            return record
    return None


def _apply_async(record: TaskRecord, task: Task, kwargs: dict) -> None:
    try:
        task.apply_async(kwargs=kwargs, task_id=record.task_id)
    except OperationalError as exc:
        record.delete()
        logger.warning("broker_unavailable", task=task.name, error=str(exc))
        raise ServiceUnavailable(
            "The task queue is unavailable; try again shortly.", code="queue_unavailable", retry_after=30
        ) from exc


def task_enqueue(*, task: Task, kwargs: dict, key: str, user_id: int | None) -> tuple[TaskRecord, bool]:
    """Start `task` unless the same work (same key) is already in flight; returns (record, created).
    A dead broker is a 503, not a 500."""
    existing = task_in_flight(key=key)
    if existing is not None:
        return existing, False
    record = TaskRecord.objects.create(task_id=uuid.uuid4().hex, name=task.name, key=key, user_id=user_id)
    _apply_async(record, task, kwargs)
    return record, True


def _task_follow(*, lead: TaskRecord, name: str, key: str, kwargs: dict, user_id: int) -> TaskRecord | None:
    """A record of the user's own that starts `kwargs` when `lead` finishes; None when `lead` has released its
    followers meanwhile (the row lock orders this against task_followers_release)."""
    with transaction.atomic():
        locked = TaskRecord.objects.select_for_update().filter(pk=lead.pk, released_at__isnull=True).first()
        if locked is None:
            return None
        return TaskRecord.objects.create(
            task_id=uuid.uuid4().hex, name=name, key=key, user_id=user_id, follows=locked, kwargs=kwargs
        )


def task_followers_release(*, task_id: str) -> int:
    """Called by a training that succeeded: start each follower's own task under the follower's task id."""
    from predictions.tasks import generate_prediction

    with transaction.atomic():
        lead = (
            TaskRecord.objects.select_for_update().filter(task_id=task_id, released_at__isnull=True).first()
        )
        if lead is None:
            return 0
        lead.released_at = timezone.now()
        lead.save(update_fields=["released_at"])
        followers = list(lead.followers.all())
    for follower in followers:
        try:
            generate_prediction.apply_async(kwargs=follower.kwargs, task_id=follower.task_id)
        except OperationalError as exc:
            logger.warning("follower_not_started", task_id=follower.task_id, error=str(exc))
    return len(followers)


def training_key(*, symbol: str, timeframe: str, horizon: int, algorithms: Sequence[str] | None) -> str:
    """What identifies the same training in flight (TaskRecord.key), whoever started it."""
    names = ",".join(sorted(algorithms or ["all"]))
    return f"train:{symbol}:{timeframe}:{horizon}:{names}"


def training_claim(
    *, user_id: int | None, symbol: str, timeframe: str, horizon: int, algorithms: Sequence[str] | None
) -> tuple[TaskRecord, bool]:
    """For a training started outside the API (staff in the admin): the same training in flight (queued by a
    user, the nightly retraining or staff), or a new TaskRecord to start it under, so that others join it in
    turn. Returns (record, created); a record whose task could not be queued must be deleted."""
    key = training_key(symbol=symbol, timeframe=timeframe, horizon=horizon, algorithms=algorithms)
    existing = task_in_flight(key=key)
    if existing is not None:
        return existing, False
    record = TaskRecord.objects.create(
        task_id=uuid.uuid4().hex, name=TRAIN_TASK, key=key, user_id=user_id, kwargs={"then_predict": None}
    )
    return record, True


@dataclass(frozen=True, kw_only=True)
class RetrainingEnqueued:
    enqueued: int
    already_enqueued: int


def models_retrain_enqueue(*, plan: Sequence, expires: int) -> RetrainingEnqueued:
    """Queue the nightly retraining `plan` (selectors.Retraining items), each training once a day: its task id
    names the day (beat's clock) and the key, and its TaskRecord (no user) is created with it. The nightly task
    delivered again (acks_late: a worker lost during the fan-out, or after it before the ack) finds the records
    and queues nothing twice; a training it queued that already finished is not re-run. A user asking meanwhile
    for the same training joins it (task_in_flight finds the record by key) instead of training it again."""
    from zoneinfo import ZoneInfo

    from predictions.tasks import train_models

    day = timezone.now().astimezone(ZoneInfo(settings.CELERY_TIMEZONE)).date().isoformat()
    enqueued = already = 0
    for item in plan:
        key = training_key(
            symbol=item.symbol, timeframe=item.timeframe, horizon=item.horizon, algorithms=item.algorithms
        )
        record, created = TaskRecord.objects.get_or_create(
            task_id=f"retrain:{day}:{key.removeprefix('train:')}",
            defaults={"name": TRAIN_TASK, "key": key, "user": None, "kwargs": {"then_predict": None}},
        )
        if not created:
            already += 1
            continue
        try:
            train_models.apply_async(
                args=[item.symbol, item.timeframe, item.horizon, item.algorithms],
                task_id=record.task_id,
                expires=expires,
            )
        except OperationalError:
            record.delete()  # not queued: the next delivery of the nightly task queues it
            raise
        enqueued += 1
    return RetrainingEnqueued(enqueued=enqueued, already_enqueued=already)


def training_quota_check(*, user) -> None:
    """Non-staff users may start TRAINING_QUOTA_PER_DAY trainings per rolling 24 hours."""
    if user.is_staff:
        return
    limit = settings.TRAINING_QUOTA_PER_DAY
    since = timezone.now() - timedelta(days=1)
    started = TaskRecord.objects.filter(
        user_id=user.pk, name=TRAIN_TASK, follows__isnull=True, created_at__gte=since
    ).order_by("created_at")
    if started.count() >= limit:
        oldest = started.values_list("created_at", flat=True)[0]
        wait = oldest + timedelta(days=1) - timezone.now()
        raise TrainingQuotaExceeded(limit=limit, retry_after=max(1, math.ceil(wait.total_seconds())))


def training_enqueue(
    *,
    user,
    symbol: str,
    timeframe: Timeframe,
    horizon: int,
    algorithms: Sequence[str] | None,
    then_predict: str | None = None,
) -> Queued:
    """Queue a training (then, optionally, the user's prediction), or join the same training in flight.

    Staff may train any symbol. Anyone else only catalogue symbols, within the daily quota; a user waiting for
    another user's queued training gets a follower task of their own, not the other user's task."""
    from market.models import Instrument
    from market.selectors import symbol_require_known
    from predictions.tasks import train_models

    symbol_require_known(symbol=symbol)  # an unknown symbol is a 404 before anything else
    key = training_key(symbol=symbol, timeframe=timeframe.value, horizon=horizon, algorithms=algorithms)
    existing = task_in_flight(key=key)
    if existing is not None:
        # The same work: the user's own training that ends in the same prediction (records from before the
        # lead kept its `then_predict` count as such), or a training asked for without a prediction.
        same = existing.kwargs.get("then_predict", then_predict) == then_predict
        if (existing.user_id == user.pk and same) or not then_predict:
            return Queued(task=existing, joined=True)
        predict = {
            "symbol": symbol,
            "timeframe": timeframe.value,
            "horizon": horizon,
            "model": then_predict,
            "user_id": user.pk,
        }
        predict_key = f"predict:{symbol}:{timeframe.value}:{horizon}:{then_predict}:{user.pk}"
        mine = task_in_flight(key=predict_key)
        if mine is not None:
            return Queued(task=mine, joined=True)
        follower = _task_follow(
            lead=existing, name=PREDICT_TASK, key=predict_key, kwargs=predict, user_id=user.pk
        )
        if follower is not None:
            return Queued(task=follower, following=True)
    # Starting a training (not following one) is what is bounded for non-staff users.
    if not user.is_staff and not Instrument.objects.filter(symbol=symbol).exists():
        raise TrainingNotAllowed(
            f"{symbol} is not in the instrument catalogue: only staff can train models for it."
        )
    needed, available = training_history_available(symbol=symbol, timeframe=timeframe, horizon=horizon)
    if available < needed:
        raise NotEnoughHistory(needed=needed, available=available)
    training_quota_check(user=user)
    record = TaskRecord.objects.create(
        task_id=uuid.uuid4().hex,
        name=TRAIN_TASK,
        key=key,
        user_id=user.pk,
        kwargs={"then_predict": then_predict},  # what its result will hold, for whoever asks meanwhile
    )
    _apply_async(
        record,
        train_models,
        {
            "symbol": symbol,
            "timeframe": timeframe.value,
            "horizon": horizon,
            "algorithms": list(algorithms) if algorithms else None,
            "then_predict": then_predict,
            "user_id": user.pk,
        },
    )
    return Queued(task=record)


@offloaded(errors=MARKET_ERRORS)
def training_history_available(*, symbol: str, timeframe: Timeframe, horizon: int) -> tuple[int, int]:
    """How many closed final candles a training at `horizon` needs (history_needed: TA-Lib's warm-up of the
    features), and how many it would read (training_candles: fetched first when fewer are stored). Plain data:
    through a web worker, TA-Lib, pandas and the provider run in a compute worker (a tuple comes back a list)."""
    needed = history_needed(horizon)
    return needed, len(training_candles(symbol=symbol, timeframe=timeframe, needed=needed))


@offloaded(errors=PREDICT_ERRORS)
def prediction_made_now(
    *, symbol: str, timeframe: Timeframe, horizon: int, model: str, user_id: int | None
) -> dict:
    """prediction_generate's prediction in the API's shape (selectors.prediction_made, the 201 body): plain data,
    so that through a web worker the model (scikit-learn, the naive walk-forward), its features (pandas, TA-Lib)
    and the provider run in a compute worker."""
    from predictions.selectors import prediction_made

    prediction = prediction_generate(
        symbol=symbol, timeframe=timeframe, horizon=horizon, model=model, user_id=user_id
    )
    return prediction_made(prediction)


def prediction_request(
    *, user, symbol: str, timeframe: Timeframe, horizon: int, model: str | None = None
) -> dict | Queued:
    """A prediction now (prediction_made_now's 201 body) when a usable model is loaded in a worker that is no ML
    worker; otherwise the task that will make it (training first when there is no active model; an ML worker for
    TensorFlow models). Never trains in the request."""
    from predictions.selectors import model_default
    from predictions.tasks import generate_prediction

    model = model or DEFAULT_MODEL
    if model == DEFAULT_MODEL:
        # The best active model that beats naive, else naive; training first only when nothing was ever trained.
        trained = model_default(symbol=symbol, timeframe=timeframe, horizon=horizon)
        if trained is None and not active_models_exist(symbol=symbol, timeframe=timeframe, horizon=horizon):
            return training_enqueue(
                user=user,
                symbol=symbol,
                timeframe=timeframe,
                horizon=horizon,
                algorithms=None,
                then_predict=model,
            )
    elif model == Algorithm.NAIVE:
        trained = None
    else:
        trained = active_model(symbol=symbol, timeframe=timeframe, horizon=horizon, algorithm=model)
        if trained is None:
            return training_enqueue(
                user=user,
                symbol=symbol,
                timeframe=timeframe,
                horizon=horizon,
                algorithms=None if model == Algorithm.ENSEMBLE else [model],
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
                "user_id": user.pk,
            },
            key=f"predict:{symbol}:{timeframe.value}:{horizon}:{model}:{user.pk}",
            user_id=user.pk,
        )
        return Queued(task=record, joined=not created)
    return prediction_made_now(
        symbol=symbol, timeframe=timeframe, horizon=horizon, model=model, user_id=user.pk
    )


def task_announce(
    *, task_id: str, state: str, progress: float | None = None, stage: str | None = None
) -> None:
    """Tell listeners (the live stream) how a task started from the API is doing; tasks nobody started through
    the API (no TaskRecord: scheduled work) have no owner to tell."""
    record = TaskRecord.objects.filter(task_id=task_id).values("name", "user_id").first()
    if record is None:
        return
    events.announce(
        events.TaskUpdated(
            task_id=task_id,
            name=record["name"],
            user_id=record["user_id"],
            state=state,
            progress=progress,
            stage=stage,
        )
    )


@dataclass(frozen=True, kw_only=True)
class BackfillResult:
    symbol: str
    created: int
    scored: int
    model_version: str
    trained_until: datetime


def predictions_backfill(
    *, symbol: str, timeframe: Timeframe, bars: int, horizon: int = 1, algorithm: str = "svr"
) -> BackfillResult:
    """Replay predictions on the last `bars` final bars that have matured, as of each bar: the model is fitted
    only on bars before the first replayed one and each forecast sees only the candles up to its base bar, so
    the track record has no look-ahead. Stored as `replayed` system predictions and scored at once. Running it
    again changes nothing (one replayed prediction per base bar, model and horizon).

    The model sees split-adjusted candles (today's share count), but each row is stored, like a live prediction,
    in the as-traded prices of its base bar, and scored by the same _final_close: a later rescore of its target
    bar then finds the same close, not one in other units."""
    if algorithm not in (Algorithm.RANDOM_FOREST, Algorithm.SVR, Algorithm.NAIVE):
        raise ValueError("backfill replays random_forest, svr or naive (TensorFlow stays out of this path)")
    candles = training_candles(symbol=symbol, timeframe=timeframe)
    first = len(candles) - horizon - bars  # position of the first replayed base bar
    needed = history_needed(horizon) + bars + horizon
    if first < history_needed(horizon):
        raise NotEnoughHistory(needed=needed, available=len(candles))
    params = settings.PREDICTION_MODEL_PARAMS.get(algorithm)
    known = candles.iloc[: first + 1]  # everything a forecast at the first base bar could know
    output = registry.train(algorithm, known, horizon=horizon, params=params)
    quantiles = output.evaluation.residual_quantiles
    calendar = calendar_for_symbol(symbol)
    latest = candles.index[-1].to_pydatetime()
    # The exchange's trading day of the last bar fitted on (a daily bar opens at local midnight, the day before
    # in UTC east of Greenwich).
    version = f"{algorithm} replay (fitted on bars to {known.index[-1].tz_convert(calendar.tz).date()})"
    created = scored = 0
    for position in range(first, len(candles) - horizon):
        upto = candles.iloc[: position + 1]
        forecast = registry.predict(output.forecaster, upto, horizon=horizon, residual_quantiles=quantiles)
        target = bars_ahead(calendar, timeframe, forecast.base_time, horizon)
        # Adjusted prices (in the units of the last bar read) back to the base bar's as traded: times the splits
        # going ex after it, through that last bar.
        ratio = split_ratio_between_bars(symbol=symbol, earlier=forecast.base_time, later=latest)
        realized = _final_close_at(
            symbol=symbol, timeframe=timeframe.value, base_time=forecast.base_time, target_time=target
        )
        _, was_created = Prediction.objects.get_or_create(
            symbol=symbol,
            timeframe=timeframe.value,
            horizon=horizon,
            model_used=algorithm,
            base_timestamp=forecast.base_time,
            replayed=True,
            defaults={
                "time_horizon": f"{timeframe.value} x {horizon}",
                "model_version": version,
                "predicted_price": forecast.predicted_price * ratio,
                "confidence_score": registry.confidence_from(output.evaluation),
                "lower_bound": forecast.lower * ratio,
                "upper_bound": forecast.upper * ratio,
                "base_price": forecast.base_price * ratio,
                "target_time": target,
                "realized_price": realized,
                "realized_at": bar_close(calendar, timeframe, target) if realized is not None else None,
                "error": forecast.predicted_price * ratio - realized if realized is not None else None,
                "source": _bar_source(symbol=symbol, timeframe=timeframe.value, timestamp=forecast.base_time),
            },
        )
        created += was_created
        scored += was_created and realized is not None
    predictions_invalidate(symbol)
    logger.info("predictions_backfilled", symbol=symbol, created=created, scored=scored, model=version)
    return BackfillResult(
        symbol=symbol,
        created=created,
        scored=scored,
        model_version=version,
        trained_until=known.index[-1].to_pydatetime(),
    )
