"""One JSON error shape for every 4xx/5xx: {"error": {"code", "message", "details"?}}.

DRF exceptions go through `api_exception_handler`; Django-level errors (unknown routes, failures outside DRF)
through the `handler400/403/404/500` views wired in tradingdash.urls."""

from __future__ import annotations

from typing import Any

import structlog
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = structlog.get_logger(__name__)


class ServiceUnavailable(exceptions.APIException):
    """An upstream dependency (market data provider, broker) failed; the client may retry later."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "A required service is temporarily unavailable."
    default_code = "service_unavailable"

    def __init__(self, detail: str | None = None, code: str | None = None, retry_after: int | None = None):
        super().__init__(detail, code)
        self.retry_after = retry_after


class Unprocessable(exceptions.APIException):
    """The request is well-formed but cannot be served with the data we have (e.g. too little history)."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The request cannot be processed with the available data."
    default_code = "unprocessable"

    def __init__(self, detail: str | None = None, code: str | None = None, details: dict | None = None):
        super().__init__(detail, code)
        self.details = details


class PayloadTooLarge(exceptions.APIException):
    """The request body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE (refused before it is read)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "request_too_large"


def error_body(code: str, message: str, details: Any = None) -> dict:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return {"error": body}


_MESSAGES = {
    "parse_error": "Malformed request body.",
    "invalid": "Invalid input.",
}


def _code_and_message(exc: exceptions.APIException) -> tuple[str, str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        return "validation_error", "Invalid input.", exc.detail
    detail = exc.detail
    codes = exc.get_codes()
    if isinstance(detail, dict):
        # simplejwt puts {"detail": ..., "code": ..., "messages": [...]} in its errors.
        message = str(detail.get("detail", exc.default_detail))
        code = (
            detail.get("code")
            or (codes.get("detail") if isinstance(codes, dict) else None)
            or exc.default_code
        )
        return str(code), message, None
    if isinstance(detail, list):
        return str(exc.default_code), "; ".join(str(d) for d in detail), None
    return str(codes if isinstance(codes, str) else exc.default_code), str(detail), None


def _from_domain(exc: Exception) -> exceptions.APIException | None:
    """Our domain errors, raised by services and providers, as API errors (imported lazily: apps load later)."""
    from market.providers.base import LookbackExceeded
    from market.providers.errors import ProviderError, ProviderUnavailable, RateLimited, SymbolNotFound
    from market.services import StaleMarketData
    from market.symbols import InvalidSymbol
    from tradingdash.offload import ComputeUnavailable

    if isinstance(exc, ComputeUnavailable):
        return ServiceUnavailable(str(exc), code="compute_unavailable", retry_after=exc.retry_after)
    if isinstance(exc, InvalidSymbol):
        return exceptions.ValidationError({"symbol": [str(exc)]})
    if isinstance(exc, LookbackExceeded):
        return exceptions.ValidationError({"start": [str(exc)]})
    if isinstance(exc, SymbolNotFound):
        return exceptions.NotFound(str(exc), code="symbol_not_found")
    if isinstance(exc, StaleMarketData):  # a decision on the latest bar (forecast, signal) from older candles
        return ServiceUnavailable(str(exc), code="market_data_stale", retry_after=exc.retry_after)
    if isinstance(exc, RateLimited):
        return ServiceUnavailable(str(exc), code="rate_limited", retry_after=exc.retry_after)
    if isinstance(exc, ProviderUnavailable):
        return ServiceUnavailable(str(exc), code="provider_unavailable", retry_after=exc.retry_after)
    if isinstance(
        exc, ProviderError
    ):  # any other provider failure: the provider, not the request, is at fault
        return ServiceUnavailable(str(exc), code="provider_error", retry_after=exc.retry_after)
    return None


def api_exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's handler, reshaped; unexpected exceptions become a logged 500 without internals."""
    exc = _from_domain(exc) or exc
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, SuspiciousOperation):
        exc = exceptions.ParseError("Bad request.", code="bad_request")
    response = drf_exception_handler(exc, context)
    if response is None:
        request = context.get("request")
        logger.exception(
            "unhandled_exception",
            view=type(context.get("view")).__name__,
            request_id=getattr(request, "request_id", None),
        )
        return Response(
            error_body("server_error", "Internal server error."), status=status.HTTP_500_INTERNAL_SERVER_ERROR
        )
    code, message, details = _code_and_message(exc)
    details = details or getattr(exc, "details", None)
    response.data = error_body(code, message, details)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after:
        response["Retry-After"] = str(int(retry_after))
    return response


def _json_error(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    # Django sends every SuspiciousOperation here, an oversized body (RequestDataTooBig) included.
    if isinstance(exception, RequestDataTooBig):
        return _json_error(413, PayloadTooLarge.default_code, str(PayloadTooLarge.default_detail))
    return _json_error(400, "bad_request", "Bad request.")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_error(403, "permission_denied", "You do not have permission to perform this action.")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_error(404, "not_found", "Not found.")


def server_error(request: HttpRequest) -> JsonResponse:
    return _json_error(500, "server_error", "Internal server error.")
