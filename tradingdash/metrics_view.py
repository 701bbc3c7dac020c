"""GET /metrics (Prometheus exposition format): for staff (session or JWT) and for scrapers on the addresses
in METRICS_ALLOWED_IPS; everyone else gets our JSON error (401 without credentials, 403 otherwise)."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django_prometheus.exports import ExportToDjangoView
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication


def client_ip(request) -> str:
    """The peer address, or with NUM_PROXIES trusted proxies in front, the address the outermost one saw.
    Never a client-supplied X-Forwarded-For otherwise: that header is trivially forged."""
    num_proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if num_proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",")]
        return hops[-min(num_proxies, len(hops))]
    return request.META.get("REMOTE_ADDR", "")


def ip_allowed(address: str, allowed: list[str]) -> bool:
    """Whether `address` is one of `allowed` (addresses or networks such as 10.0.0.0/8)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(entry, strict=False) for entry in allowed)


class MetricsAccess(BasePermission):
    def has_permission(self, request, view) -> bool:
        if ip_allowed(client_ip(request), settings.METRICS_ALLOWED_IPS):
            return True
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class MetricsApi(APIView):
    # JWT first: its WWW-Authenticate header makes a missing credential a 401 rather than a 403.
    authentication_classes = [JWTAuthentication, SessionAuthentication]
    permission_classes = [MetricsAccess]
    schema = None  # operations endpoint, not part of the API

    def perform_content_negotiation(self, request, force=False):
        # Scrapers ask for text/plain or OpenMetrics; the body is not a DRF rendering, and errors are JSON.
        return super().perform_content_negotiation(request, force=True)

    def get(self, request):
        return ExportToDjangoView(request)
