from django.contrib import admin

from alerts.models import Alert, AlertDelivery, AlertEvent, NotificationChannel


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("symbol", "kind", "threshold", "signal_type", "user", "active", "armed", "last_fired_at")
    list_filter = ("kind", "active", "armed")
    list_select_related = ("user",)
    search_fields = ("symbol", "user__username")
    raw_id_fields = ("user",)
    readonly_fields = ("armed", "last_value", "last_fired_at", "fired_count", "created_at", "updated_at")


class AlertDeliveryInline(admin.TabularInline):
    model = AlertDelivery
    extra = 0
    fields = ("channel_kind", "channel", "state", "attempts", "last_error", "delivered_at")
    readonly_fields = fields
    can_delete = False


@admin.register(AlertEvent)
class AlertEventAdmin(admin.ModelAdmin):
    list_display = ("fired_at", "symbol", "kind", "value", "user", "message")
    list_filter = ("kind",)
    list_select_related = ("user",)
    search_fields = ("symbol", "user__username", "key")
    date_hierarchy = "fired_at"
    readonly_fields = [f.name for f in AlertEvent._meta.fields]
    inlines = [AlertDeliveryInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    """URLs and secrets are credentials: shown masked, never editable here (users manage them through the API)."""

    list_display = ("id", "kind", "masked_url", "masked_secret", "user", "created_at")
    list_filter = ("kind",)
    list_select_related = ("user",)
    search_fields = ("user__username",)
    fields = ("user", "kind", "masked_url", "masked_secret", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False
