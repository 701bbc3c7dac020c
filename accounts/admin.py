from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm

from accounts.models import User
from accounts.selectors import email_taken
from tradingdash.events import UserReactivated, announce


class UserCreationForm(AdminUserCreationForm):
    """Django's add form, with the email every account needs (login by email, one account per address): without
    it the account was stored with an empty email, and the second such account broke the unique index (a 500)."""

    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("username", "email")

    def clean_email(self) -> str:
        email = User.objects.normalize_email(self.cleaned_data["email"])
        if email_taken(email=email):  # as the unique index compares: LOWER(email)
            raise forms.ValidationError("A user with that email already exists.", code="unique")
        return email


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    add_form = UserCreationForm
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "email", "usable_password", "password1", "password2"),
            },
        ),
    )
    list_display = ("username", "email", "is_active", "is_staff", "date_joined", "last_login")

    def save_model(self, request, obj, form, change):
        reactivated = change and obj.is_active and "is_active" in form.changed_data
        super().save_model(request, obj, form, change)
        if reactivated:  # what watched for the user (alerts) starts watching again now, not from before
            announce(UserReactivated(user_id=obj.pk))

    list_filter = ("is_active", "is_staff", "is_superuser", "date_joined")
    search_fields = ("username", "email", "first_name", "last_name")
    ordering = ("-date_joined",)
