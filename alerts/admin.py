from django import forms
from django.contrib import admin

from alerts.models import ALERT_EDITABLE_FIELDS, Alert, AlertDelivery, AlertEvent, NotificationChannel
from alerts.selectors import alert_with_condition
from alerts.services import alert_update


class AlertAdminForm(forms.ModelForm):
    class Meta:
        model = Alert
        fields = "__all__"  # noqa: DJ007 (the admin's fieldsets and read-only fields choose)

    def clean(self):
        """The API's rule: no second alert with the condition of another of the same user's."""
        data = super().clean()
        user = data.get("user") or getattr(self.instance, "user", None)
        if user is not None and data.get("symbol") and data.get("kind"):
            same = alert_with_condition(
                user=user,
                symbol=data["symbol"],
                kind=data["kind"],
                threshold=data.get("threshold"),
                signal_type=data.get("signal_type") or "",
                exclude=self.instance.pk,
            )
            if same is not None:
                raise forms.ValidationError(f"Alert {same} of this user already has this condition.")
        return data


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    form = AlertAdminForm
    list_display = ("symbol", "kind", "threshold", "signal_type", "user", "active", "armed", "last_fired_at")
    list_filter = ("kind", "active", "armed")
    list_select_related = ("user",)
    search_fields = ("symbol", "user__username")
    raw_id_fields = ("user",)
    readonly_fields = (
        "armed",
        "last_value",
        "last_fired_at",
        "last_observed_at",
        "threshold_set_at",
        "watching_since",
        "fired_count",
        "created_at",
        "updated_at",
    )

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (("user",) if obj is not None else ())

    def save_model(self, request, obj, form, change):
        """Through alert_update, like the API: only the edited fields are written, so a form loaded before the
        alert fired never rolls that firing back."""
        if not change:
            return super().save_model(request, obj, form, change)
        edited = {
            name: form.cleaned_data[name] for name in form.changed_data if name in ALERT_EDITABLE_FIELDS
        }
        alert_update(alert=obj, **edited)
        obj.refresh_from_db()


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
