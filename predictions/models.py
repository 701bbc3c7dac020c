from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from market.timeframes import STORED_TIMEFRAME_CHOICES
from predictions.ml.significance import beats_naive


class Algorithm(models.TextChoices):
    LSTM = "lstm", "LSTM (Keras)"
    RANDOM_FOREST = "random_forest", "Random forest"
    SVR = "svr", "Support vector regression"
    NAIVE = "naive", "Naive (last close)"
    ENSEMBLE = "ensemble", "Ensemble of the models that beat naive"


TRAINABLE = [Algorithm.LSTM, Algorithm.RANDOM_FOREST, Algorithm.SVR]
TRAIN_TASK = "predictions.train_models"


def artifact_path(instance: TrainedModel, filename: str) -> str:
    symbol = instance.symbol.replace("^", "_")
    return f"models/{symbol}/{instance.timeframe}/h{instance.horizon}/{filename}"


class TrainedModel(models.Model):
    """One trained version of a model for (symbol, timeframe, horizon, algorithm), with its walk-forward
    metrics and its artifact. At most one version per key is active; older versions stay for audit."""

    symbol = models.CharField(max_length=20)
    timeframe = models.CharField(max_length=3, choices=STORED_TIMEFRAME_CHOICES)
    horizon = models.PositiveSmallIntegerField()
    algorithm = models.CharField(max_length=20, choices=Algorithm.choices)
    version = models.PositiveIntegerField()
    trained_at = models.DateTimeField(auto_now_add=True)
    data_start = models.DateTimeField()
    data_end = models.DateTimeField()
    n_samples = models.PositiveIntegerField()
    features = models.JSONField(default=list)
    hyperparameters = models.JSONField(default=dict)
    metrics = models.JSONField(
        default=dict, help_text="Walk-forward (out-of-sample) metrics, naive's beside."
    )
    fold_metrics = models.JSONField(default=list)
    residual_quantiles = models.JSONField(default=dict)
    artifact = models.FileField(upload_to=artifact_path, max_length=255)
    artifact_sha256 = models.CharField(max_length=64)
    is_active = models.BooleanField(default=False)
    training_task_id = models.CharField(
        max_length=255,
        blank=True,
        default="",
        db_index=True,
        help_text="The training task that stored it: that task run again (a retry of the prediction after it, "
        "a redelivery) returns the versions of a finished run, and resumes an unfinished one from them.",
    )
    training_complete = models.BooleanField(
        default=True,
        help_text="False until the training run that stored it has stored all its versions and promoted them: "
        "none is promoted before, so a run lost while training leaves nothing active, and the run delivered "
        "again resumes from it instead of training it again.",
    )
    checkpoint = models.JSONField(
        null=True,
        blank=True,
        help_text="While its run is unfinished: its walk-forward evaluation with the out-of-sample rows, which the "
        "resumed run needs (the ensemble, promotion) without training it again. Cleared when the run finishes.",
    )
    data_revised_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When stored candles inside its training window (data_start to data_end) were first found "
        "rewritten, filled in, deleted or re-adjusted after it read them (a provider's revision, a repair, a staff "
        "delete, a split or bonus entered since): "
        "its walk-forward figures describe bars no longer stored. Empty while they are as it read them; "
        "retraining makes a version that is not.",
    )

    class Meta:
        ordering = ["-trained_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["symbol", "timeframe", "horizon", "algorithm", "version"],
                name="predictions_model_version",
            ),
            models.UniqueConstraint(
                fields=["symbol", "timeframe", "horizon", "algorithm"],
                condition=Q(is_active=True),
                name="predictions_one_active_model",
            ),
            # Two workers holding one training task at once (a redelivery while it still runs) store one
            # version per algorithm: the second insert fails and that worker takes the first's.
            models.UniqueConstraint(
                fields=["training_task_id", "symbol", "timeframe", "horizon", "algorithm"],
                condition=~Q(training_task_id=""),
                name="predictions_one_version_per_training",
            ),
        ]
        indexes = [models.Index(fields=["symbol", "timeframe", "horizon", "is_active"])]

    def __str__(self) -> str:
        return f"{self.symbol} {self.timeframe} h{self.horizon} {self.algorithm} v{self.version}"

    @property
    def mae(self) -> float | None:
        return self.metrics.get("mae")

    @property
    def needs_tensorflow(self) -> bool:
        """Running it imports TensorFlow (an LSTM, or an ensemble with one): only ML workers may do that."""
        if self.algorithm == Algorithm.LSTM:
            return True
        members = self.hyperparameters.get("members", []) if self.algorithm == Algorithm.ENSEMBLE else []
        return any(member.get("algorithm") == Algorithm.LSTM for member in members)

    @property
    def beats_naive(self) -> bool:
        """Walk-forward MAE below naive's and more than luck (Diebold-Mariano p < 0.10); False for versions
        stored before the test was recorded."""
        return beats_naive(self.metrics)


class Prediction(models.Model):
    """A forecast of the close `horizon` bars after `base_timestamp` (the seed's fields plus its provenance,
    its 80% interval and, once the target bar has closed, what actually happened)."""

    symbol = models.CharField(max_length=20)
    timeframe = models.CharField(max_length=3, choices=STORED_TIMEFRAME_CHOICES)
    horizon = models.PositiveSmallIntegerField()
    time_horizon = models.CharField(max_length=20, help_text='Human form of the horizon, e.g. "1D x 5".')
    model_used = models.CharField(max_length=20, help_text="lstm, random_forest, svr, ensemble or naive.")
    model_version = models.CharField(max_length=200, help_text="The model versions behind this prediction.")
    trained_models = models.ManyToManyField(TrainedModel, blank=True, related_name="predictions")
    predicted_price = models.FloatField()
    confidence_score = models.FloatField(
        null=True,
        help_text="Walk-forward directional accuracy of the model(s) used (0-1): how often, out of sample, the "
        "predicted direction of the move was right.",
    )
    lower_bound = models.FloatField(help_text="Lower end of the 80% interval (walk-forward residuals).")
    upper_bound = models.FloatField(help_text="Upper end of the 80% interval (walk-forward residuals).")
    base_price = models.FloatField()
    base_timestamp = models.DateTimeField()
    target_time = models.DateTimeField(help_text="Open time of the bar whose close is predicted.")
    realized_price = models.FloatField(null=True, blank=True)
    realized_at = models.DateTimeField(null=True, blank=True)
    error = models.FloatField(null=True, blank=True, help_text="predicted_price - realized_price")
    # Null means the system's (public) prediction: a user's own go with the user, never turning into the system's.
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE
    )
    replayed = models.BooleanField(
        default=False,
        help_text="Made afterwards by backfill_predictions, as of its base bar with only the data known then "
        "(a model fitted on earlier bars), to give a track record; never a forecast anyone acted on.",
    )
    source = models.CharField(
        max_length=20,
        blank=True,
        default="",
        help_text="Where the bar it was made from came from (the provider: yfinance, csv, or synthetic for "
        "generated demo data); empty for predictions stored before this was recorded (null in the API).",
    )
    task_id = models.CharField(
        max_length=255,
        null=True,
        blank=True,
        unique=True,
        help_text="The background task that made it: that task delivered again finds it instead of storing another.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["symbol", "timeframe", "-created_at"]),
            models.Index(
                fields=["target_time"], condition=Q(realized_price__isnull=True), name="predictions_unscored"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.time_horizon} → {self.predicted_price:.2f} ({self.model_used})"

    @property
    def within_interval(self) -> bool | None:
        if self.realized_price is None:
            return None
        return self.lower_bound <= self.realized_price <= self.upper_bound


def keep_trainings_as_the_systems(collector, field, sub_objs, using) -> None:
    """on_delete of TaskRecord.user: a deleted user's tasks go with them, except their trainings. A training's
    message is still queued (or running), its versions serve everyone, and other users' predictions may follow
    it: its record stays, as the system's (no user), so it still starts their tasks when it finishes and a
    user asking for the same training joins it instead of training it twice."""
    trainings = sub_objs.filter(name=TRAIN_TASK)
    models.SET_NULL(collector, field, trainings, using)
    models.CASCADE(collector, field, sub_objs.exclude(name=TRAIN_TASK), using)


class TaskRecord(models.Model):
    """Who is waiting for a background task, so only they (or staff) can read its status; `key` finds an
    in-flight duplicate (e.g. the same training twice).

    A user who asks for what another user's queued training will make gets a record of their own that
    `follows` that training: when it finishes, the follower's task (`kwargs`) is started under the follower's
    own task id, so nobody reads anybody else's task and no training runs twice."""

    task_id = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=100)
    key = models.CharField(max_length=200, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=keep_trainings_as_the_systems
    )
    created_at = models.DateTimeField(auto_now_add=True)
    follows = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="followers",
        help_text="The shared task (a training) this one starts after.",
    )
    kwargs = models.JSONField(default=dict, blank=True, help_text="Arguments of a follower's own task.")
    released_at = models.DateTimeField(
        null=True, blank=True, help_text="When a finished training started its followers' tasks."
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} {self.task_id}"
