"""Request id and access logging (every response carries X-Request-ID and every request logs one line), and
the project's middleware stack made async-capable without thread hops.

Under ASGI (production: gunicorn with uvicorn workers) Django runs a sync-only middleware, and each sync hook of
an async-capable `MiddlewareMixin` (process_request, process_view, process_response), through `sync_to_async`:
a thread hop each, about a dozen per request, which cost more CPU than a cached quote itself (bench/README.md,
"Where a cached quote's time went under ASGI"). The subclasses below run those hooks inline on the event loop;
that is only right for hooks that do no I/O, which holds for every class wrapped here (headers, cookies, URL
resolution, in-memory Prometheus counters). Under WSGI and in the test client they behave exactly as Django's.
"""

from __future__ import annotations

import re
import time
import types
import uuid

import structlog
from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from corsheaders import middleware as cors_middleware
from django.contrib.auth import middleware as auth_middleware
from django.contrib.messages import middleware as messages_middleware
from django.contrib.sessions import middleware as session_middleware
from django.http import HttpRequest, HttpResponse
from django.middleware import clickjacking, common, csrf, security
from django_prometheus import middleware as prometheus_middleware
from whitenoise import middleware as whitenoise_middleware

from tradingdash.middleware_modes import SyncAndAsyncMiddleware

logger = structlog.get_logger("tradingdash.request")

REQUEST_ID_HEADER = "X-Request-ID"
# Client-supplied ids are echoed into logs and headers: accept only short, plain tokens.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIDMiddleware(SyncAndAsyncMiddleware):
    """Bind a request id (taken from the request when valid, else generated) to logs and the response."""

    def _sync_call(self, request: HttpRequest) -> HttpResponse:
        started = self._begin(request)
        return self._finish(request, self.get_response(request), started)

    async def _async_call(self, request: HttpRequest) -> HttpResponse:
        started = self._begin(request)
        return self._finish(request, await self.get_response(request), started)

    @staticmethod
    def _begin(request: HttpRequest) -> float:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            request_id=request_id, method=request.method, path=request.path
        )
        return time.perf_counter()

    @staticmethod
    def _finish(request: HttpRequest, response: HttpResponse, started: float) -> HttpResponse:
        response[REQUEST_ID_HEADER] = request.request_id
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


class InlineHooksMixin:
    """For a `MiddlewareMixin` whose hooks do no I/O: in async mode, call them inline instead of one
    `sync_to_async` thread hop per hook. Django adapts process_view and process_template_response itself
    (a hop each when they are sync), so in async mode the instance gets coroutine versions of them."""

    def __init__(self, get_response):
        super().__init__(get_response)
        if self.async_mode:
            for name in ("process_view", "process_template_response"):
                hook = getattr(self, name, None)
                if hook is not None and not iscoroutinefunction(hook):
                    setattr(self, name, _inline_coroutine(hook))

    async def __acall__(self, request):
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            response = self.process_response(request, response)
        return response


def _inline_coroutine(hook):
    """The bound sync `hook` as a bound coroutine method (Django names the middleware by `__self__`)."""

    async def hook_inline(middleware, *args, **kwargs):
        return hook(*args, **kwargs)

    return types.MethodType(hook_inline, hook.__self__)


class PrometheusBeforeMiddleware(InlineHooksMixin, prometheus_middleware.PrometheusBeforeMiddleware):
    pass


class PrometheusAfterMiddleware(InlineHooksMixin, prometheus_middleware.PrometheusAfterMiddleware):
    pass


class SecurityMiddleware(InlineHooksMixin, security.SecurityMiddleware):
    pass


class CommonMiddleware(InlineHooksMixin, common.CommonMiddleware):
    pass


class CsrfViewMiddleware(InlineHooksMixin, csrf.CsrfViewMiddleware):
    """CSRF_USE_SESSIONS stays off (tradingdash.tests.test_api_middleware): the token comes from a cookie, so
    these hooks read no session and do no I/O."""


class XFrameOptionsMiddleware(InlineHooksMixin, clickjacking.XFrameOptionsMiddleware):
    pass


class CorsMiddleware(cors_middleware.CorsMiddleware):
    """django-cors-headers is async already (its hooks run inline); named here so the whole stack is in one
    place."""


class WhiteNoiseMiddleware(whitenoise_middleware.WhiteNoiseMiddleware):
    """WhiteNoise's middleware is sync only, which put every ASGI request through a thread. Async-capable: a
    request for anything but a static file goes straight on; a static file is served as WhiteNoise does."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response=None, *args, **kwargs):
        super().__init__(get_response, *args, **kwargs)
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request):
        if self.autorefresh:  # development only: looks at the file system
            static_file = await sync_to_async(self.find_file)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve)(static_file, request)
        return await self.get_response(request)


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
