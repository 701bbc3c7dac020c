from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from market.models import (
    CandleSeries,
    CorporateAction,
    CoverageInterval,
    DataIssue,
    Instrument,
    MarketData,
    MarketHoliday,
    MarketSession,
    SyncBatch,
    SyncRun,
)
from market.selectors import sync_run_percent, sync_runs_with_progress
from market.services import (
    candles_delete,
    candles_outside_sessions_delete,
    corporate_actions_changed,
    market_reads_invalidate,
    sessions_coverage_reopen,
)
from market.sources import catalogue_invalidate, holidays_invalidate, sessions_invalidate
from market.symbols import InvalidSymbol, parse_symbol
from market.tasks import sync_symbol
from market.timeframes import Timeframe
from tradingdash.admin_actions import task_start_from_admin


@admin.display(description="Chart")
def chart_link(obj) -> str:
    """The instrument's chart page (candles, signals, predictions, levels, backtest); none on the "add" page,
    where the instrument has no symbol yet."""
    if not obj.symbol:
        return "-"
    url = reverse("admin-chart", args=[obj.symbol])
    if getattr(obj, "timeframe", None):
        url += f"?timeframe={obj.timeframe}"
    return format_html('<a href="{}">chart</a>', url)


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = (
        "symbol",
        "name",
        "exchange",
        "kind",
        "series",
        "isin",
        "currency",
        "tick",
        "active",
        chart_link,
    )
    readonly_fields = (chart_link,)
    list_filter = ("active", "kind", "exchange", "series")
    search_fields = ("symbol", "name", "isin")
    actions = ["sync_now"]

    @admin.display(description="tick", ordering="tick_size")
    def tick(self, obj) -> str:
        """The step its API prices are rounded to; '(default)' when staff set none."""
        tick = obj.price_tick
        if tick is None:
            return "0.01 (default)"
        return f"{tick.normalize()}" + ("" if obj.tick_size else " (default)")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # Its exchange and tick shape every response about it: drop this process's copy of the catalogue and
        # the symbol's cached responses.
        catalogue_invalidate()
        market_reads_invalidate(symbol=obj.symbol)

    @admin.action(description="Sync now (daily candles)", permissions=["change"])
    def sync_now(self, request, queryset):
        for symbol in queryset.values_list("symbol", flat=True):
            task_start_from_admin(
                self, request, task=sync_symbol, args=[symbol, Timeframe.D1.value], label=f"{symbol}: sync"
            )


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

    # A deleted bar must be fetched again by the next read and no longer served from a cached body.
    def delete_model(self, request, obj):
        candles_delete(candles=MarketData.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        candles_delete(candles=queryset)


class CoverageIntervalInline(admin.TabularInline):
    model = CoverageInterval
    fields = ("covered_from", "covered_to", "last_synced_at", "source")
    readonly_fields = fields
    extra = 0
    can_delete = True  # deleting an interval makes the next read fetch that range again

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(CandleSeries)
class CandleSeriesAdmin(admin.ModelAdmin):
    """One row per symbol and timeframe, with its fetched intervals and where the provider's history starts."""

    list_display = ("symbol", "timeframe", "history_starts_at", "history_source", "interval_count")
    list_filter = ("timeframe", "history_source")
    search_fields = ("symbol",)
    inlines = [CoverageIntervalInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_interval_count=Count("intervals"))

    @admin.display(description="intervals", ordering="_interval_count")
    def interval_count(self, obj):
        return obj._interval_count


@admin.register(CoverageInterval)
class CoverageIntervalAdmin(admin.ModelAdmin):
    """Every fetched interval; delete one to have the next read fetch that range again."""

    list_display = ("series", "covered_from", "covered_to", "last_synced_at", "source")
    list_filter = ("series__timeframe", "source")
    list_select_related = ("series",)
    search_fields = ("series__symbol",)
    ordering = ("series__symbol", "series__timeframe", "covered_from")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MarketHoliday)
class MarketHolidayAdmin(admin.ModelAdmin):
    list_display = ("date", "exchange", "description")
    list_filter = ("exchange",)
    search_fields = ("description",)
    date_hierarchy = "date"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        holidays_invalidate(obj.exchange)
        if change and "exchange" in form.changed_data:
            holidays_invalidate(form.initial["exchange"])

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        holidays_invalidate(obj.exchange)

    def delete_queryset(self, request, queryset):
        exchanges = set(queryset.values_list("exchange", flat=True))
        super().delete_queryset(request, queryset)
        for exchange in exchanges:
            holidays_invalidate(exchange)


@admin.register(MarketSession)
class MarketSessionAdmin(admin.ModelAdmin):
    """Special sessions and shortened days as the exchange announced them (or `manage.py load_sessions`)."""

    list_display = ("date", "exchange", "kind", "open_time", "close_time", "description", "source")
    list_filter = ("exchange", "kind")
    search_fields = ("description", "source")
    date_hierarchy = "date"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        sessions_invalidate(obj.exchange)
        if change and "exchange" in form.changed_data:
            sessions_invalidate(form.initial["exchange"])
        # The provider's rows of that day were left out as off-session until now: reads and syncs ask again.
        sessions_coverage_reopen(exchange=obj.exchange, dates=[obj.date])

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        sessions_invalidate(obj.exchange)

    def delete_queryset(self, request, queryset):
        exchanges = set(queryset.values_list("exchange", flat=True))
        super().delete_queryset(request, queryset)
        for exchange in exchanges:
            sessions_invalidate(exchange)


@admin.register(DataIssue)
class DataIssueAdmin(admin.ModelAdmin):
    list_display = ("symbol", "timeframe", "kind", "start", "end", "unavailable", "resolved", "checked_at")
    list_filter = ("resolved", "kind", "timeframe", "unavailable")
    search_fields = ("symbol",)
    date_hierarchy = "start"
    readonly_fields = ("symbol", "timeframe", "kind", "start", "end", "details", "detected_at", "checked_at")
    actions = ["mark_resolved", "delete_bars_outside_sessions"]

    @admin.action(description="Mark resolved (checked by hand)", permissions=["change"])
    def mark_resolved(self, request, queryset):
        updated = queryset.filter(resolved=False).update(resolved=True, resolved_at=timezone.now())
        self.message_user(request, f"{updated} issue(s) marked resolved", messages.SUCCESS)

    @admin.action(
        description="Delete the bars outside the session (checked against the calendar again)",
        permissions=["delete_candles"],
    )
    def delete_bars_outside_sessions(self, request, queryset):
        result = candles_outside_sessions_delete(issues=queryset)
        text = f"{result.deleted} bar(s) outside a session deleted, their issue(s) resolved"
        if result.in_session:
            text += (
                f"; {result.in_session} bar(s) the calendar now puts inside a session kept"
                " (the next quality check resolves their issues)"
            )
        if result.skipped:
            text += f"; {result.skipped} issue(s) skipped (not an open outside-session issue of daily or intraday bars)"
        self.message_user(request, text, messages.SUCCESS if result.deleted else messages.WARNING)

    def has_delete_candles_permission(self, request) -> bool:
        """It deletes candles and resolves issues: both permissions."""
        return request.user.has_perm("market.delete_marketdata") and self.has_change_permission(request)


class CorporateActionForm(forms.ModelForm):
    class Meta:
        model = CorporateAction
        fields = ("symbol", "ex_date", "kind", "ratio", "amount", "factor", "note")

    def clean_symbol(self) -> str:
        """The symbol the candles are stored under (`tcs` is TCS.NS), and one that has candles or a catalogue
        row: an action under any other name adjusts nothing, silently."""
        try:
            symbol = parse_symbol(self.cleaned_data["symbol"], default_suffix=settings.DEFAULT_SYMBOL_SUFFIX)
        except InvalidSymbol as exc:
            raise forms.ValidationError(str(exc)) from exc
        known = (
            Instrument.objects.filter(symbol=symbol).exists()
            or MarketData.objects.filter(symbol=symbol).exists()
        )
        if not known:
            raise forms.ValidationError(f"Unknown symbol {symbol!r}: neither in the catalogue nor stored.")
        return symbol


@admin.register(CorporateAction)
class CorporateActionAdmin(admin.ModelAdmin):
    """Staff enter what the provider misses (a demerger's price factor); provider-reported rows are kept as
    reported, marked with their source. A row staff add or edit is theirs (`source` staff), which no sync
    overwrites: a corrected provider row would otherwise get the provider's values back on its next report."""

    form = CorporateActionForm
    list_display = ("symbol", "ex_date", "kind", "ratio", "amount", "factor", "source", "note")
    list_filter = ("kind", "source")
    search_fields = ("symbol", "note")
    date_hierarchy = "ex_date"
    readonly_fields = ("source", "created_at")

    # Adjusted reads of the symbol were cached, and predictions across the ex-date scored, with the actions of
    # the time: a change makes them stale.
    def save_model(self, request, obj, form, change):
        obj.source = CorporateAction.STAFF
        super().save_model(request, obj, form, change)
        ex_dates, kinds = [obj.ex_date], [obj.kind]
        if change and form.initial["symbol"] != obj.symbol:
            corporate_actions_changed(
                symbol=form.initial["symbol"],
                ex_dates=[form.initial["ex_date"]],
                kinds=[form.initial["kind"]],
            )
        elif change:
            ex_dates.append(form.initial["ex_date"])
            kinds.append(form.initial["kind"])
        corporate_actions_changed(symbol=obj.symbol, ex_dates=ex_dates, kinds=kinds)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        corporate_actions_changed(symbol=obj.symbol, ex_dates=[obj.ex_date], kinds=[obj.kind])

    def delete_queryset(self, request, queryset):
        days: dict[str, list] = {}
        kinds: dict[str, list] = {}
        for symbol, ex_date, kind in queryset.values_list("symbol", "ex_date", "kind"):
            days.setdefault(symbol, []).append(ex_date)
            kinds.setdefault(symbol, []).append(kind)
        super().delete_queryset(request, queryset)
        for symbol, ex_dates in days.items():
            corporate_actions_changed(symbol=symbol, ex_dates=ex_dates, kinds=kinds[symbol])


class SyncBatchInline(admin.TabularInline):
    model = SyncBatch
    fields = (
        "number",
        "status",
        "start",
        "end",
        "symbol_count",
        "attempts",
        "inserted",
        "updated",
        "not_found",
        "errors",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    @admin.display(description="symbols")
    def symbol_count(self, obj):
        return len(obj.symbols)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    """Whole-market sync runs and how far each got (read-only; `manage.py sync_all_instruments --resume ID`
    continues one)."""

    list_display = (
        "id",
        "timeframe",
        "trigger",
        "planned_at",
        "finished_at",
        "progress",
        "batches",
        "failed",
        "inserted",
        "updated",
        "not_found",
        "errors",
    )
    list_filter = ("timeframe", "trigger")
    date_hierarchy = "planned_at"
    inlines = [SyncBatchInline]

    def get_queryset(self, request):
        return sync_runs_with_progress(super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in SyncRun._meta.fields]

    @admin.display(description="progress")
    def progress(self, obj):
        percent = sync_run_percent(obj)
        return format_html(
            '<progress max="100" value="{}"></progress> {}%', f"{percent:.0f}", f"{percent:.0f}"
        )

    @admin.display(description="batches done", ordering="batches_done")
    def batches(self, obj):
        return f"{obj.batches_done} / {obj.batches_total}"

    @admin.display(description="failed", ordering="batches_failed")
    def failed(self, obj):
        return obj.batches_failed

    @admin.display(description="rows inserted", ordering="rows_inserted")
    def inserted(self, obj):
        return obj.rows_inserted

    @admin.display(description="rows updated", ordering="rows_updated")
    def updated(self, obj):
        return obj.rows_updated

    @admin.display(description="not found", ordering="symbols_not_found")
    def not_found(self, obj):
        return obj.symbols_not_found

    @admin.display(description="batches with errors", ordering="batches_with_errors")
    def errors(self, obj):
        return obj.batches_with_errors

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
