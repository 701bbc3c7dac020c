from __future__ import annotations

from dataclasses import asdict

from django.contrib.auth import authenticate
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.api.serializers import (
    LoginInputSerializer,
    MeSerializer,
    PasswordChangeInputSerializer,
    RefreshInputSerializer,
    RefreshSerializer,
    RegisterInputSerializer,
    RegisterOutputSerializer,
    TokenPairSerializer,
)
from accounts.authentication import user_reread
from accounts.services import AccountTaken, password_change, refresh_token_lock, user_log_in, user_register
from accounts.throttles import AuthIPThrottle, AuthUsernameThrottle, AuthUserThrottle

INVALID_CREDENTIALS = "Invalid username or password."


class _PublicApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request) -> str:
        # Without authenticators DRF would turn 401 into 403; credentials errors here are 401.
        return 'Bearer realm="api"'


class RegisterApi(_PublicApi):
    throttle_classes = [AuthIPThrottle, AuthUsernameThrottle]

    @extend_schema(request=RegisterInputSerializer, responses={201: RegisterOutputSerializer}, tags=["auth"])
    def post(self, request):
        data = RegisterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            user = user_register(**data.validated_data)
        except AccountTaken as exc:
            raise ValidationError(
                {field: [f"A user with that {field} already exists."] for field in exc.fields}, code="unique"
            ) from exc
        return Response(RegisterOutputSerializer(user).data, status=status.HTTP_201_CREATED)


class LoginApi(_PublicApi):
    throttle_classes = [AuthIPThrottle, AuthUsernameThrottle]
    extra_error_statuses = (401,)

    @extend_schema(request=LoginInputSerializer, responses={200: TokenPairSerializer}, tags=["auth"])
    def post(self, request):
        data = LoginInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request, **data.validated_data)
        if user is None:
            # One message for unknown users, wrong passwords and inactive accounts.
            raise AuthenticationFailed(INVALID_CREDENTIALS, code="invalid_credentials")
        return Response(asdict(user_log_in(user=user)))


class RefreshApi(_PublicApi):
    extra_error_statuses = (401,)

    @extend_schema(request=RefreshInputSerializer, responses={200: RefreshInputSerializer}, tags=["auth"])
    def post(self, request):
        data = RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        serializer = RefreshSerializer(data=request.data)
        try:
            with transaction.atomic():
                # One refresh at a time per token: simplejwt checks the blacklist, then blacklists and rotates,
                # so two requests with the same token at once both passed the check and both got a new pair.
                refresh_token_lock(data.validated_data["refresh"])
                serializer.is_valid(raise_exception=True)
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        except ObjectDoesNotExist as exc:
            # simplejwt looks the token's user up with .get(): a deleted account's refresh token is a 401 like
            # an inactive one's, not a 500.
            raise AuthenticationFailed(
                "No active account found for the given token.", code="no_active_account"
            ) from exc
        return Response(serializer.validated_data)


class LogoutApi(APIView):
    """Blacklist the given refresh token; its access tokens expire on their own (short lifetime)."""

    @extend_schema(request=RefreshInputSerializer, responses={205: None}, tags=["auth"])
    def post(self, request):
        data = RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            token = RefreshToken(data.validated_data["refresh"])
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        if str(token.get("user_id")) != str(request.user.pk):
            raise InvalidToken("Token does not belong to the authenticated user.")
        with transaction.atomic():
            refresh_token_lock(data.validated_data["refresh"])  # ordered against a refresh of the same token
            token.blacklist()
        return Response(status=status.HTTP_205_RESET_CONTENT)


class MeApi(APIView):
    @extend_schema(responses={200: MeSerializer}, tags=["auth"])
    def get(self, request):
        return Response(MeSerializer(request.user).data)


class PasswordChangeApi(APIView):
    """Change the password; every refresh token of the user stops working (log in again everywhere)."""

    throttle_classes = [AuthIPThrottle, AuthUserThrottle]

    @extend_schema(request=PasswordChangeInputSerializer, responses={204: None}, tags=["auth"])
    def post(self, request):
        user = user_reread(request.auth)  # the current password checked against the row, not a cached copy
        data = PasswordChangeInputSerializer(data=request.data, context={"user": user})
        data.is_valid(raise_exception=True)
        password_change(user=user, new_password=data.validated_data["new_password"])
        return Response(status=status.HTTP_204_NO_CONTENT)
