from __future__ import annotations

from datetime import UTC

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from accounts.authentication import password_claim_matches
from accounts.backends import password_matches
from accounts.selectors import email_taken, username_taken_any_case
from tradingdash.inputs import StrictInputSerializer

User = get_user_model()


class PasswordField(serializers.CharField):
    """A password exactly as sent, outer spaces included (DRF's CharField trims them; the admin and
    createsuperuser keep them, and so must login). Text that is blank once stripped is still refused as blank,
    as before and as the schema says (tradingdash.openapi)."""

    blank_when_stripped = True

    def __init__(self, **kwargs):
        super().__init__(
            write_only=True,
            max_length=4096,
            trim_whitespace=False,
            style={"input_type": "password"},
            **kwargs,
        )

    def run_validation(self, data=serializers.empty):
        if isinstance(data, str) and data and not data.strip():
            self.fail("blank")
        return super().run_validation(data)


class RegisterInputSerializer(StrictInputSerializer):
    """Only these three fields are accepted; privilege fields (is_staff…) a client sends are a 400."""

    username = serializers.CharField(max_length=150)
    email = serializers.EmailField(max_length=254)
    password = PasswordField()

    def validate_username(self, value: str) -> str:
        # As create_user stores it (NFKC): fullwidth "ａｌｉｃｅ" is "alice", so it is checked as "alice".
        value = User.normalize_username(value)
        field = User._meta.get_field("username")
        for validator in field.validators:
            try:
                validator(value)
            except DjangoValidationError as exc:
                raise serializers.ValidationError(exc.messages) from exc
        if username_taken_any_case(username=value):  # "Alice" beside "alice": look-alikes login tells apart
            raise serializers.ValidationError("A user with that username already exists.", code="unique")
        # Login takes an exact username before an email: this name would stand in front of that account's login.
        if "@" in value and email_taken(email=value):
            raise serializers.ValidationError(
                "That is another account's email address; choose another username.", code="unique"
            )
        return value

    def validate_email(self, value: str) -> str:
        value = User.objects.normalize_email(value)
        if email_taken(email=value):
            raise serializers.ValidationError("A user with that email already exists.", code="unique")
        if username_taken_any_case(username=value):
            # Logging in with this address would find that account by its username, never this one.
            raise serializers.ValidationError(
                "That is another account's username; choose another email address.", code="unique"
            )
        return value

    def validate(self, attrs: dict) -> dict:
        candidate = User(username=attrs["username"], email=attrs["email"])
        try:
            password_validation.validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": exc.messages}) from exc
        return attrs


class RegisterOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "date_joined"]
        extra_kwargs = {"date_joined": {"default_timezone": UTC}}  # UTC whatever TIME_ZONE (the admin's) is


class LoginInputSerializer(StrictInputSerializer):
    username = serializers.CharField(max_length=254, help_text="Username or email address.")
    password = PasswordField()


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Access token lifetime in seconds.")


class RefreshInputSerializer(StrictInputSerializer):
    refresh = serializers.CharField()


class RefreshSerializer(TokenRefreshSerializer):
    """simplejwt's refresh (blacklist, active user, rotation), which also refuses a token issued under a password
    the user no longer has: one set in admin or by changepassword blacklists nothing, and the pair it gave was
    refused by every endpoint (the access token carries the old password's hash)."""

    def validate(self, attrs: dict) -> dict:
        refresh = self.token_class(attrs["refresh"])
        user_id = refresh.get(jwt_settings.USER_ID_CLAIM)
        password = User.objects.filter(pk=user_id).values_list("password", flat=True).first()
        if password is not None and not password_claim_matches(refresh, password):
            raise AuthenticationFailed(
                "The user's password has been changed: log in again.", code="password_changed"
            )
        return super().validate(attrs)


class MeSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "is_active", "is_staff", "date_joined"]
        read_only_fields = fields
        extra_kwargs = {"date_joined": {"default_timezone": UTC}}


class PasswordChangeInputSerializer(StrictInputSerializer):
    """The current password proves it is the owner; the new one passes the same validators as at registration."""

    current_password = PasswordField()
    new_password = PasswordField()

    def validate_current_password(self, value: str) -> str:
        if not password_matches(self.context["user"], value):
            raise serializers.ValidationError("The current password is wrong.", code="wrong_password")
        return value

    def validate_new_password(self, value: str) -> str:
        try:
            password_validation.validate_password(value, user=self.context["user"])
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc
        return value
