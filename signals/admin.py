import json

from django.contrib import admin, messages
from django.utils.html import format_html_join

from signals.models import TradingSignal
from signals.tasks import generate_for_watchlist


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
    readonly_fields = [f.name for f in TradingSignal._meta.fields] + ["factors_table"]
    exclude = ("factors",)
    actions = ["generate_watchlist"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Factors")
    def factors_table(self, obj):
        return format_html_join(
            "\n",
            "<div><b>{}</b>: {} (score {}, weight {})</div>",
            (
                (
                    f.get("name"),
                    f.get("explanation"),
                    f"{f.get('score', 0):+.2f}",
                    f"{f.get('weight', 0):.2f}",
                )
                for f in (obj.factors if isinstance(obj.factors, list) else json.loads(obj.factors))
            ),
        )

    def has_generate_permission(self, request) -> bool:
        """Generating creates signals: staff need signals.add_tradingsignal (adding by hand stays off)."""
        return request.user.has_perm("signals.add_tradingsignal")

    @admin.action(description="Generate signals for the whole watchlist (1D)", permissions=["generate"])
    def generate_watchlist(self, request, queryset):
        result = generate_for_watchlist.delay("1D")
        self.message_user(request, f"Signal generation enqueued as task {result.id}", messages.SUCCESS)
