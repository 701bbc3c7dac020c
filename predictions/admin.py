from django.contrib import admin, messages
from django.utils.html import format_html_join

from predictions.models import Prediction, TaskRecord, TrainedModel
from predictions.services import model_activate
from predictions.tasks import train_models


@admin.register(TrainedModel)
class TrainedModelAdmin(admin.ModelAdmin):
    list_display = (
        "symbol",
        "timeframe",
        "horizon",
        "algorithm",
        "version",
        "is_active",
        "mae",
        "mae_vs_naive",
        "directional_accuracy",
        "trained_at",
    )
    list_filter = ("algorithm", "is_active", "timeframe", "horizon", "symbol")
    search_fields = ("symbol",)
    readonly_fields = [f.name for f in TrainedModel._meta.fields if f.name != "is_active"] + ["metrics_table"]
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
        return format_html_join("\n", "<div><b>{}</b>: {}</div>", sorted(obj.metrics.items()))

    def has_add_permission(self, request):
        return False

    @admin.action(description="Activate the selected versions", permissions=["change"])
    def activate(self, request, queryset):
        for model in queryset:
            model_activate(trained=model)
            self.message_user(request, f"{model} is now active", messages.SUCCESS)

    @admin.action(description="Retrain (same symbol, timeframe, horizon, algorithm)", permissions=["change"])
    def retrain(self, request, queryset):
        for model in queryset:
            result = train_models.delay(
                model.symbol,
                model.timeframe,
                model.horizon,
                [model.algorithm] if model.algorithm != "ensemble" else None,
            )
            self.message_user(request, f"{model}: retraining enqueued as task {result.id}", messages.SUCCESS)


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
