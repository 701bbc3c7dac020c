from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from market.models import CandleCoverage, Instrument, MarketData, MarketHoliday
from market.sources import holidays_invalidate
from market.tasks import sync_symbol
from market.timeframes import Timeframe


@admin.display(description="Chart")
def chart_link(obj) -> str:
    """The instrument's chart page (candles, signals, predictions, levels, backtest)."""
    url = reverse("admin-chart", args=[obj.symbol])
    if getattr(obj, "timeframe", None):
        url += f"?timeframe={obj.timeframe}"
    return format_html('<a href="{}">chart</a>', url)


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = ("symbol", "name", "exchange", "kind", "currency", "active", chart_link)
    readonly_fields = (chart_link,)
    list_filter = ("active", "kind", "exchange")
    search_fields = ("symbol", "name")
    actions = ["sync_now"]

    @admin.action(description="Sync now (daily candles)")
    def sync_now(self, request, queryset):
        for symbol in queryset.values_list("symbol", flat=True):
            result = sync_symbol.delay(symbol, Timeframe.D1.value)
            self.message_user(request, f"{symbol}: sync enqueued as task {result.id}", messages.SUCCESS)


@admin.register(MarketData)
class MarketDataAdmin(admin.ModelAdmin):
    list_display = (
        "symbol",
        "timeframe",
        "timestamp",
        "open_price",
        "high_price",
        "low_price",
        "close_price",
        "volume",
        "source",
        chart_link,
    )
    list_filter = ("timeframe", "source", "symbol")
    search_fields = ("symbol",)
    date_hierarchy = "timestamp"
    ordering = ("-timestamp",)
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CandleCoverage)
class CandleCoverageAdmin(admin.ModelAdmin):
    list_display = ("symbol", "timeframe", "covered_from", "covered_to", "last_synced_at", "source")
    list_filter = ("timeframe", "source")
    search_fields = ("symbol",)


@admin.register(MarketHoliday)
class MarketHolidayAdmin(admin.ModelAdmin):
    list_display = ("date", "exchange", "description")
    list_filter = ("exchange",)
    search_fields = ("description",)
    date_hierarchy = "date"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        holidays_invalidate(obj.exchange)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        holidays_invalidate(obj.exchange)
