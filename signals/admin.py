import json

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from signals.models import TradingSignal
from signals.tasks import generate_for_watchlist
from tradingdash.admin_actions import task_start_from_admin


@admin.register(TradingSignal)
class TradingSignalAdmin(admin.ModelAdmin):
    list_display = (
        "symbol",
        "timeframe",
        "signal_type",
        "strength",
        "entry_price",
        "stop_loss",
        "price_target",
        "candle_timestamp",
        "created_at",
    )
    list_filter = ("signal_type", "timeframe", "symbol", "created_at")
    search_fields = ("symbol", "reasoning")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in TradingSignal._meta.fields if f.name != "factors"] + ["factors_table"]
    exclude = ("factors",)
    actions = ["generate_watchlist"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Factors")
    def factors_table(self, obj):
        factors = obj.factors if isinstance(obj.factors, list) else json.loads(obj.factors)
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f.get("name"),
                    f"{f.get('score', 0):+.2f}",
                    f"{f.get('weight', 0):.2f}",
                    f.get("explanation"),
                )
                for f in factors
            ),
        )
        return format_html(
            "<table><thead><tr><th>factor</th><th>score</th><th>weight</th><th>why</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    def has_generate_permission(self, request) -> bool:
        """Generating creates signals: staff need signals.add_tradingsignal (adding by hand stays off)."""
        return request.user.has_perm("signals.add_tradingsignal")

    @admin.action(description="Generate signals for the whole watchlist (1D)", permissions=["generate"])
    def generate_watchlist(self, request, queryset):
        task_start_from_admin(
            self, request, task=generate_for_watchlist, args=["1D"], label="Signal generation (1D)"
        )
