"""Request id and access logging: every response carries X-Request-ID and every request logs one line."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

import structlog
from django.contrib.auth import middleware as auth_middleware
from django.contrib.messages import middleware as messages_middleware
from django.contrib.sessions import middleware as session_middleware
from django.http import HttpRequest, HttpResponse

logger = structlog.get_logger("tradingdash.request")

REQUEST_ID_HEADER = "X-Request-ID"
# Client-supplied ids are echoed into logs and headers: accept only short, plain tokens.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIDMiddleware:
    """Bind a request id (taken from the request when valid, else generated) to logs and the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            request_id=request_id, method=request.method, path=request.path
        )
        started = time.perf_counter()
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        user = getattr(request, "user", None)
        user_id = user.pk if user is not None and getattr(user, "is_authenticated", False) else None
        log = logger.warning if response.status_code >= 500 else logger.info
        log(
            "request_finished",
            status=response.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            user_id=user_id,
        )
        structlog.contextvars.clear_contextvars()
        return response


# --- Middleware for the admin only. API requests carry a JWT, never a session cookie, and DRF sets request.user
# itself: sessions, Django's authentication and messages would only cost them time (about 4% of a cached
# quote). Django's CSRF middleware stays as it is (cheap for csrf_exempt DRF views; `check --deploy` wants it).
# Subclasses, so Django's admin checks still see them; sync and async alike (in async mode get_response returns
# the awaitable the caller awaits).
API_PREFIX = "/api/"


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


class SessionMiddleware(session_middleware.SessionMiddleware):
    def __call__(self, request):
        return self.get_response(request) if _is_api(request) else super().__call__(request)


class AuthenticationMiddleware(auth_middleware.AuthenticationMiddleware):
    def __call__(self, request):
        return self.get_response(request) if _is_api(request) else super().__call__(request)


class MessageMiddleware(messages_middleware.MessageMiddleware):
    def __call__(self, request):
        return self.get_response(request) if _is_api(request) else super().__call__(request)
