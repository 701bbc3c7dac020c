import json
from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection
from django.test import Client
from prometheus_client import REGISTRY
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from market.providers.errors import SymbolNotFound
from market.services import candles_sync
from market.sources import get_provider
from market.tasks import sync_symbol
from market.timeframes import Timeframe

pytestmark = pytest.mark.django_db


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


class TestAccess:
    """Not public in production: staff, or an allow-listed scraper address (none by default with DEBUG off)."""

    def test_anonymous_is_401_json(self, api_client):
        response = api_client.get("/metrics")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"
        assert response["WWW-Authenticate"].startswith("Bearer")

    def test_normal_user_is_403_json(self, user):
        response = bearer(user).get("/metrics")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"

    def test_invalid_token_is_401(self):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
        assert client.get("/metrics").status_code == 401

    def test_staff_with_jwt_reads_the_exposition_format(self, staff_user):
        response = bearer(staff_user).get("/metrics", HTTP_ACCEPT="text/plain;version=0.0.4")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain")
        assert b"django_http_requests_total_by_method_total" in response.content

    def test_staff_with_session(self, staff_user):
        client = Client()
        client.force_login(staff_user)
        assert client.get("/metrics").status_code == 200

    def test_normal_user_with_session_is_403(self, user):
        client = Client()
        client.force_login(user)
        assert client.get("/metrics").status_code == 403

    def test_allow_listed_address_and_network(self, settings, api_client):
        settings.METRICS_ALLOWED_IPS = ["127.0.0.1", "10.0.0.0/8"]
        assert api_client.get("/metrics").status_code == 200
        assert api_client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
        assert api_client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 401

    def test_forged_forwarded_for_does_not_open_it(self, settings, api_client):
        settings.METRICS_ALLOWED_IPS = ["127.0.0.1"]
        response = api_client.get("/metrics", REMOTE_ADDR="192.0.2.7", HTTP_X_FORWARDED_FOR="127.0.0.1")
        assert response.status_code == 401

    def test_behind_a_trusted_proxy_the_client_address_counts(self, settings, api_client):
        settings.METRICS_ALLOWED_IPS = ["127.0.0.1"]
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
        # A local reverse proxy forwarding an outside client: the proxy's own address must not count.
        outside = api_client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.7")
        assert outside.status_code == 401
        scraper = api_client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1")
        assert scraper.status_code == 200

    def test_not_in_the_api_schema(self, api_client):
        schema = api_client.get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
        assert "/metrics" not in json.loads(schema.content)["paths"]


class TestRequestMetrics:
    def test_requests_latency_status_and_database_are_counted(self, auth_client):
        before_get = sample("django_http_requests_total_by_method_total", method="GET")
        before_404 = sample("django_http_responses_total_by_status_total", status="404")
        before_queries = sample("django_db_execute_total", alias="default", vendor=connection.vendor)
        before_latency = sample(
            "django_http_requests_latency_seconds_by_view_method_count", view="market-symbols", method="GET"
        )
        assert auth_client.get("/api/market/symbols").status_code == 200
        assert auth_client.get("/api/no-such-route").status_code == 404
        assert sample("django_http_requests_total_by_method_total", method="GET") == before_get + 2
        assert sample("django_http_responses_total_by_status_total", status="404") == before_404 + 1
        assert sample("django_db_execute_total", alias="default", vendor=connection.vendor) > before_queries
        latency = sample(
            "django_http_requests_latency_seconds_by_view_method_count", view="market-symbols", method="GET"
        )
        assert latency == before_latency + 1


class TestOwnCounters:
    def test_candles_synced_by_source_and_outcome(self):
        labels = {"source": "synthetic", "timeframe": "1D"}
        inserted = sample("tradingdash_candles_synced_total", outcome="inserted", **labels)
        updated = sample("tradingdash_candles_synced_total", outcome="updated", **labels)
        unchanged = sample("tradingdash_candles_synced_total", outcome="unchanged", **labels)
        with time_machine.travel(datetime(2026, 6, 3, 11, 30, tzinfo=UTC), tick=False):
            first = candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=30, provider=get_provider())
            second = candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, provider=get_provider())
        # The second sync's overlap comes back as stored: unchanged, not updated.
        assert first.inserted > 0 and (second.inserted, second.updated) == (0, 0) and second.unchanged > 0
        assert (
            sample("tradingdash_candles_synced_total", outcome="inserted", **labels)
            == inserted + first.inserted
        )
        assert (
            sample("tradingdash_candles_synced_total", outcome="updated", **labels)
            == updated + second.updated
        )
        assert (
            sample("tradingdash_candles_synced_total", outcome="unchanged", **labels)
            == unchanged + first.unchanged + second.unchanged
        )

    def test_task_failures_by_task_name(self):
        before = sample("tradingdash_task_failures_total", task="market.sync_symbol")
        # throw=False traces the task as a worker does (tests otherwise propagate the error to the caller).
        result = sync_symbol.apply(args=["NOSUCHCO.NS", "1D"], throw=False)
        assert result.failed() and isinstance(result.result, SymbolNotFound)
        assert sample("tradingdash_task_failures_total", task="market.sync_symbol") == before + 1

    def test_successful_task_is_not_a_failure(self):
        before = sample("tradingdash_task_failures_total", task="market.sync_symbol")
        with time_machine.travel(datetime(2026, 6, 3, 11, 30, tzinfo=UTC), tick=False):
            assert sync_symbol.apply(args=["TCS.NS", "1D", 10], throw=False).successful()
        assert sample("tradingdash_task_failures_total", task="market.sync_symbol") == before
