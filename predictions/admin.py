from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from predictions.models import Prediction, TaskRecord, TrainedModel
from predictions.services import model_activate, training_claim
from predictions.tasks import train_models
from tradingdash.admin_actions import task_start_from_admin

FOLD_COLUMNS = (
    "fold",
    "train_start",
    "train_end",
    "test_start",
    "test_end",
    "n_train",
    "n_samples",
    "mae",
    "naive_mae",
    "mae_vs_naive",
    "rmse",
    "directional_accuracy",
)


def _number(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "–" if value is None else str(value)


@admin.register(TrainedModel)
class TrainedModelAdmin(admin.ModelAdmin):
    list_display = (
        "symbol",
        "timeframe",
        "horizon",
        "algorithm",
        "version",
        "is_active",
        "training_complete",
        "mae",
        "mae_vs_naive",
        "directional_accuracy",
        "trained_at",
        "data_revised_at",
    )
    # "Data revised: not empty" lists the versions trained on candles rewritten since: select, then Retrain.
    list_filter = (
        "algorithm",
        "is_active",
        "training_complete",
        ("data_revised_at", admin.EmptyFieldListFilter),
        "timeframe",
        "horizon",
        "symbol",
    )
    search_fields = ("symbol",)
    # Metrics and folds as tables, the artifact as a name (media files are not served over HTTP).
    readonly_fields = [
        *(
            f.name
            for f in TrainedModel._meta.fields
            if f.name not in {"is_active", "metrics", "fold_metrics", "artifact", "checkpoint"}
        ),
        "artifact_file",
        "metrics_table",
        "folds_table",
        "folds_chart",
    ]
    exclude = ("metrics", "fold_metrics", "artifact", "checkpoint")  # the checkpoint: rows for a resumed run
    actions = ["activate", "retrain"]

    @admin.display(description="MAE / naive")
    def mae_vs_naive(self, obj):
        value = obj.metrics.get("mae_vs_naive")
        return f"{value:.3f}" if value is not None else "–"

    @admin.display(description="Direction hit rate")
    def directional_accuracy(self, obj):
        value = obj.metrics.get("directional_accuracy")
        return f"{value:.1%}" if value is not None else "–"

    @admin.display(description="Walk-forward metrics")
    def metrics_table(self, obj):
        rows = format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>", ((k, _number(v)) for k, v in sorted(obj.metrics.items()))
        )
        return format_html("<table>{}</table>", rows) if obj.metrics else "–"

    @admin.display(description="Folds")
    def folds_table(self, obj):
        folds = obj.fold_metrics or []
        if not folds:
            return "–"
        header = format_html_join("", "<th>{}</th>", ((column,) for column in FOLD_COLUMNS))
        rows = format_html_join(
            "",
            "<tr>{}</tr>",
            (
                (format_html_join("", "<td>{}</td>", ((_number(fold.get(c)),) for c in FOLD_COLUMNS)),)
                for fold in folds
            ),
        )
        return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", header, rows)

    @admin.display(description="Model vs naive MAE per fold")
    def folds_chart(self, obj):
        """Bars per walk-forward fold (blue: the model, grey: naive's last close): lower is better."""
        folds = [
            f for f in obj.fold_metrics or [] if f.get("mae") is not None and f.get("naive_mae") is not None
        ]
        if not folds:
            return "–"
        top = max(max(f["mae"], f["naive_mae"]) for f in folds) or 1.0
        width, height, bar = 40 * len(folds) + 20, 120, 14
        bars = format_html_join(
            "",
            '<rect x="{}" y="{}" width="{}" height="{}" fill="#417690"><title>fold {}: model {}</title></rect>'
            '<rect x="{}" y="{}" width="{}" height="{}" fill="#aaa"><title>fold {}: naive {}</title></rect>'
            '<text x="{}" y="{}" font-size="10">{}</text>',
            (
                (
                    10 + 40 * i, 100 - 90 * f["mae"] / top, bar, 90 * f["mae"] / top, f.get("fold", i + 1),
                    _number(f["mae"]),
                    10 + 40 * i + bar, 100 - 90 * f["naive_mae"] / top, bar, 90 * f["naive_mae"] / top,
                    f.get("fold", i + 1), _number(f["naive_mae"]),
                    14 + 40 * i, 114, f.get("fold", i + 1),
                )
                for i, f in enumerate(folds)
            ),
        )  # fmt: skip
        return format_html(
            '<svg class="folds-chart" width="{}" height="{}" role="img" aria-label="MAE per fold">{}</svg>'
            '<div><span style="color:#417690">■</span> model <span style="color:#aaa">■</span> naive</div>',
            width,
            height,
            bars,
        )

    @admin.display(description="Artifact")
    def artifact_file(self, obj):
        return f"{obj.artifact.name} (sha256 {obj.artifact_sha256[:12]}…)" if obj.artifact else "–"

    def has_add_permission(self, request):
        return False

    @admin.action(description="Activate the selected versions", permissions=["change"])
    def activate(self, request, queryset):
        # One version per (symbol, timeframe, horizon, algorithm) can be active: of two selected, activating
        # both in turn left the last one active while both were reported "now active".
        for versions in _by_model(queryset.order_by("version")).values():
            if len(versions) > 1:
                names = ", ".join(str(model) for model in versions)
                self.message_user(
                    request,
                    f"Not activated: only one version of a model can be active; select one of {names}.",
                    messages.ERROR,
                )
                continue
            model_activate(trained=versions[0])
            self.message_user(request, f"{versions[0]} is now active", messages.SUCCESS)

    @admin.action(description="Retrain (same symbol, timeframe, horizon, algorithm)", permissions=["change"])
    def retrain(self, request, queryset):
        # One training per (symbol, timeframe, horizon) with every algorithm selected there (an ensemble: every
        # default one): a training per selected version trained the same model as often as it was selected.
        trainings: dict[tuple[str, str, int], set[str] | None] = {}
        for symbol, timeframe, horizon, algorithm in _by_model(queryset):
            key = (symbol, timeframe, horizon)
            if algorithm == "ensemble" or (key in trainings and trainings[key] is None):
                trainings[key] = None
            else:
                trainings.setdefault(key, set()).add(algorithm)
        for (symbol, timeframe, horizon), algorithms in trainings.items():
            names = sorted(algorithms) if algorithms else None
            label = f"{symbol} {timeframe} h{horizon}: retraining {', '.join(names or ['all'])}"
            # The same training already queued or running (a user's, the nightly one, another click): not twice.
            record, created = training_claim(
                user_id=request.user.pk, symbol=symbol, timeframe=timeframe, horizon=horizon, algorithms=names
            )
            if not created:
                self.message_user(
                    request,
                    f"{label}: not started again, already queued or running as task {record.task_id}",
                    messages.WARNING,
                )
                continue
            args = [symbol, timeframe, horizon, names]
            if not task_start_from_admin(
                self, request, task=train_models, args=args, label=label, task_id=record.task_id
            ):
                record.delete()  # not queued: nothing for anyone to join


def _by_model(queryset) -> dict[tuple[str, str, int, str], list[TrainedModel]]:
    """The selected versions grouped by the model they are versions of."""
    grouped: dict[tuple[str, str, int, str], list[TrainedModel]] = {}
    for model in queryset:
        grouped.setdefault((model.symbol, model.timeframe, model.horizon, model.algorithm), []).append(model)
    return grouped


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = (
        "symbol",
        "timeframe",
        "time_horizon",
        "model_used",
        "base_price",
        "predicted_price",
        "realized_price",
        "error",
        "confidence_score",
        "target_time",
        "created_at",
    )
    list_filter = ("model_used", "timeframe", "symbol", ("realized_price", admin.EmptyFieldListFilter))
    search_fields = ("symbol", "model_version")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Prediction._meta.fields]
    exclude = ("trained_models",)

    def has_add_permission(self, request):
        return False


@admin.register(TaskRecord)
class TaskRecordAdmin(admin.ModelAdmin):
    list_display = ("task_id", "name", "key", "user", "created_at")
    list_filter = ("name",)
    search_fields = ("task_id", "key")
    readonly_fields = ("task_id", "name", "key", "user", "created_at")
