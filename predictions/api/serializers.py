from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from market.api.fields import QuerySerializer, TimeframeField
from market.timeframes import Timeframe
from predictions.features import MAX_HORIZON, MIN_HORIZON
from predictions.models import Algorithm
from tradingdash.inputs import StrictInputSerializer

MODEL_CHOICES = [Algorithm.ENSEMBLE, Algorithm.LSTM, Algorithm.NAIVE, Algorithm.RANDOM_FOREST, Algorithm.SVR]
TRAINABLE_CHOICES = [Algorithm.LSTM, Algorithm.RANDOM_FOREST, Algorithm.SVR]


class ListQuerySerializer(QuerySerializer):
    timeframe = TimeframeField(default=Timeframe.D1)
    limit = serializers.IntegerField(min_value=1, max_value=500, default=20)


class TimeframeQuerySerializer(QuerySerializer):
    timeframe = TimeframeField(default=Timeframe.D1)


class GenerateInputSerializer(StrictInputSerializer):
    timeframe = TimeframeField(default=Timeframe.D1)
    horizon = serializers.IntegerField(min_value=MIN_HORIZON, max_value=MAX_HORIZON, default=1)
    model = serializers.ChoiceField(
        choices=MODEL_CHOICES,
        required=False,
        help_text="Omit for the default: the best active model that beats naive, else naive.",
        error_messages={
            "invalid_choice": '"{input}" is not a model; choose from: '
            + ", ".join(str(choice.value) for choice in MODEL_CHOICES)
            + " (or omit it for the default)."
        },
    )


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "enum": [choice.value for choice in TRAINABLE_CHOICES]},
        "minItems": 1,
        "maxItems": 3,
        "uniqueItems": True,
    }
)
class AlgorithmsField(serializers.ListField):
    """Models to train, each at most once (twice would train it twice under one request)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Each algorithm at most once.")
        return value


class TrainInputSerializer(StrictInputSerializer):
    timeframe = TimeframeField(default=Timeframe.D1)
    horizon = serializers.IntegerField(min_value=MIN_HORIZON, max_value=MAX_HORIZON, default=1)
    algorithms = AlgorithmsField(
        child=serializers.ChoiceField(choices=TRAINABLE_CHOICES), min_length=1, max_length=3, required=False
    )


class PredictionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    horizon = serializers.IntegerField()
    time_horizon = serializers.CharField()
    model_used = serializers.CharField()
    model_version = serializers.CharField()
    predicted_price = serializers.FloatField()
    confidence_score = serializers.FloatField(
        allow_null=True, help_text="Walk-forward directional accuracy (0-1) of the model used."
    )
    lower_bound = serializers.FloatField(help_text="80% interval, from walk-forward residuals.")
    upper_bound = serializers.FloatField()
    base_price = serializers.FloatField(help_text="The close of the bar the prediction was made from.")
    base_timestamp = serializers.DateTimeField(
        help_text="Open time of that bar (a daily bar: its trading day at 00:00, exchange time)."
    )
    target_time = serializers.DateTimeField(
        help_text="Open time of the bar whose close is predicted (a daily bar: its trading day at 00:00, "
        "exchange time), `horizon` bars after the base bar; not a time of day."
    )
    realized_price = serializers.FloatField(allow_null=True, help_text="That bar's close, once it closed.")
    realized_at = serializers.DateTimeField(
        allow_null=True, help_text="Open time of the bar realized_price is the close of (target_time)."
    )
    error = serializers.FloatField(allow_null=True)
    replayed = serializers.BooleanField(
        help_text="Made afterwards by backfill_predictions as of its base bar; never a forecast anyone acted on."
    )
    source = serializers.CharField(
        allow_null=True,
        help_text="Where the bar it was made from came from: yfinance, csv, or synthetic (generated demo data, "
        "not the market); null for predictions stored before this was recorded.",
    )
    created_at = serializers.DateTimeField()
    model_data_revised_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When the candles the model behind it was trained on (an ensemble's members too) were found "
        "revised (rewritten, filled in, deleted, or re-adjusted for a split or bonus) before it was made: its "
        "confidence and interval describe the bars as they were (the model's data_revised_at). Null otherwise.",
    )


class PredictionMadeSerializer(PredictionSerializer):
    model = serializers.CharField(help_text="The model that made it (naive when no model beats naive).")
    beats_naive = serializers.BooleanField(
        allow_null=True, help_text="Walk-forward MAE below naive's with Diebold-Mariano p < 0.10."
    )
    default_reason = serializers.CharField(allow_null=True, help_text="Why the default model is this one.")
    confidence_reason = serializers.CharField(allow_null=True, help_text="Why confidence_score is null.")
    warnings = serializers.ListField(
        child=serializers.CharField(),
        help_text="What to beware of in this prediction: the model was trained on candles that were rewritten, "
        "filled in or deleted inside its training window since (its data_revised_at); empty when nothing.",
    )


class PredictionListSerializer(serializers.Serializer):
    results = PredictionSerializer(many=True)


class TaskAcceptedSerializer(serializers.Serializer):
    task_id = serializers.CharField()
    status_url = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["queued", "already_running", "waiting_for_training", "SUCCESS", "FAILURE"],
        help_text="SUCCESS/FAILURE when the task has already finished (tasks run inline without a broker).",
    )
    state = serializers.CharField(help_text="The task's state, as GET /api/tasks/{task_id} reports it.")
    result = serializers.JSONField(allow_null=True, help_text="The task's result once it has succeeded.")


class TaskStatusSerializer(serializers.Serializer):
    task_id = serializers.CharField()
    name = serializers.CharField()
    state = serializers.CharField()
    progress = serializers.FloatField(allow_null=True)
    stage = serializers.CharField(allow_null=True)
    result = serializers.JSONField(allow_null=True)
    error = serializers.CharField(allow_null=True)


class ModelMetricsSerializer(serializers.Serializer):
    mae = serializers.FloatField(allow_null=True)
    rmse = serializers.FloatField(allow_null=True)
    mape = serializers.FloatField(allow_null=True)
    directional_accuracy = serializers.FloatField(allow_null=True)
    mae_vs_naive = serializers.FloatField(allow_null=True)
    dm_stat = serializers.FloatField(
        allow_null=True, help_text="Diebold-Mariano statistic; < 0 favours the model."
    )
    dm_p_value = serializers.FloatField(
        allow_null=True, help_text="Two-sided; null in versions stored before it."
    )
    coverage_80 = serializers.FloatField(allow_null=True)
    coverage_80_calm = serializers.FloatField(allow_null=True)
    coverage_80_volatile = serializers.FloatField(allow_null=True)
    n_samples = serializers.IntegerField(allow_null=True)
    folds = serializers.IntegerField(allow_null=True)


class FoldMetricsSerializer(serializers.Serializer):
    fold = serializers.IntegerField(allow_null=True)
    test_start = serializers.DateTimeField(allow_null=True)
    test_end = serializers.DateTimeField(allow_null=True)
    n = serializers.IntegerField(allow_null=True)
    mae = serializers.FloatField(allow_null=True)
    naive_mae = serializers.FloatField(allow_null=True)
    mae_vs_naive = serializers.FloatField(allow_null=True)


class NaiveMetricsSerializer(serializers.Serializer):
    mae = serializers.FloatField(allow_null=True)
    rmse = serializers.FloatField(allow_null=True)


class ModelVersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    algorithm = serializers.CharField()
    version = serializers.IntegerField()
    horizon = serializers.IntegerField()
    is_active = serializers.BooleanField()
    trained_at = serializers.DateTimeField()
    data_start = serializers.DateTimeField()
    data_end = serializers.DateTimeField()
    n_samples = serializers.IntegerField()
    metrics = ModelMetricsSerializer()
    fold_metrics = FoldMetricsSerializer(many=True)
    naive = NaiveMetricsSerializer()
    beats_naive = serializers.BooleanField()
    description = serializers.CharField(allow_null=True)
    data_revised_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When stored candles inside its training window (data_start to data_end) were first found "
        "rewritten, filled in or deleted after it was trained (a provider's revision, a repair, a staff delete): "
        "its metrics describe bars no longer stored. Null while they are as it read them. Bars appended after "
        "data_end do not count.",
    )


class ModelsOverviewSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    results = ModelVersionSerializer(many=True)


class AccuracySerializer(serializers.Serializer):
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    total = serializers.IntegerField()
    scored = serializers.IntegerField()
    hit_rate = serializers.FloatField(allow_null=True)
    mae = serializers.FloatField(allow_null=True)
    naive_mae = serializers.FloatField(
        allow_null=True,
        help_text="MAE of the naive baseline (no change from each prediction's base price) on the same predictions.",
    )
    mae_vs_naive = serializers.FloatField(
        allow_null=True, help_text="mae / naive_mae: below 1, the predictions did better than no change."
    )
    interval_coverage = serializers.FloatField(allow_null=True)
