import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings

from conftest import DEAD_CACHE

pytestmark = pytest.mark.django_db


def test_unknown_route_is_404_json(api_client):
    response = api_client.get("/api/does-not-exist")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}


@override_settings(ROOT_URLCONF="tradingdash.tests.boom_urls")
def test_unexpected_exception_in_api_view_is_500_json_without_internals(api_client):
    response = api_client.get("/boom/api")
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "server_error", "message": "Internal server error."}}
    assert "secret" not in response.content.decode()
    assert response["X-Request-ID"]


@override_settings(ROOT_URLCONF="tradingdash.tests.boom_urls")
def test_unexpected_exception_in_plain_view_is_500_json():
    client = Client(raise_request_exception=False)
    response = client.get("/boom/plain")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"
    assert "secret" not in response.content.decode()


def test_request_id_generated_and_echoed(api_client):
    generated = api_client.get("/health")
    assert len(generated["X-Request-ID"]) == 32
    echoed = api_client.get("/health", HTTP_X_REQUEST_ID="abc-123")
    assert echoed["X-Request-ID"] == "abc-123"


def test_hostile_request_id_is_replaced(api_client):
    response = api_client.get("/health", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert response["X-Request-ID"] != "bad id\nwith newline"


def test_protected_endpoints_default_to_authenticated(api_client):
    response = api_client.get("/api/auth/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_schema_and_docs_are_public(api_client):
    assert api_client.get("/api/schema").status_code == 200
    assert api_client.get("/docs").status_code == 200
    assert api_client.get("/redoc").status_code == 200


def test_schema_validates_and_documents_errors_and_jwt():
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", os.devnull)
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert schema["components"]["securitySchemes"]["jwtAuth"]["scheme"] == "bearer"
    me = schema["paths"]["/api/auth/me"]["get"]
    assert {"200", "400", "401", "403", "404", "429"} <= set(me["responses"])
    assert schema["paths"]["/api/auth/login"]["post"].get("security", [{}]) in ([], [{}])


class TestHealth:
    def test_ok(self, api_client):
        response = api_client.get("/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert body["checks"]["database"]["status"] == "ok"
        assert body["checks"]["cache"]["status"] == "ok"
        assert body["checks"]["broker"]["status"] == "ok"
        assert body["version"] == django_settings.VERSION

    def test_degraded_when_redis_is_unreachable(self, api_client, settings, dead_cache):
        settings.CELERY_BROKER_URL = DEAD_CACHE["LOCATION"]
        response = api_client.get("/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "degraded"
        assert body["checks"]["cache"]["status"] == "down"
        assert body["checks"]["broker"]["status"] == "down"
        assert body["checks"]["database"]["status"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_health_down_when_database_unreachable(api_client):
    original = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["PORT"] = "1"
    connection.settings_dict["HOST"] = "127.0.0.1"
    try:
        response = api_client.get("/health")
    finally:
        connection.close()
        connection.settings_dict.update(original)
    assert response.status_code == 503
    assert response.json()["status"] == "down"
    assert response.json()["checks"]["database"]["status"] == "down"


def _run_settings(env_overrides: dict, *args: str) -> subprocess.CompletedProcess:
    env = {
        k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "DATABASE_URL", "REDIS_URL"}
    }
    env.update({"DJANGO_SETTINGS_MODULE": "tradingdash.settings", **env_overrides})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=django_settings.BASE_DIR,
    )


def test_settings_refuse_missing_secret_key_with_debug_off():
    result = _run_settings({"DEBUG": "0"}, "check")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_check_deploy_is_clean_with_production_settings():
    production = {
        "DEBUG": "0",
        "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "dash.example.com",
        "SECURE_SSL_REDIRECT": "1",
        "USE_X_FORWARDED_PROTO": "1",
        "SECURE_HSTS_SECONDS": "31536000",
        "SESSION_COOKIE_SECURE": "1",
        "CSRF_COOKIE_SECURE": "1",
    }
    result = _run_settings(production, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("method", ["post", "patch", "delete", "put"])
def test_unknown_api_route_is_json_404_for_every_method_even_with_csrf_checks(method):
    from rest_framework.test import APIClient

    response = getattr(APIClient(enforce_csrf_checks=True), method)("/api/alerts/null,null")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


@override_settings(ROOT_URLCONF="tradingdash.tests.boom_urls")
def test_unexpected_exception_in_plain_view_is_logged_with_its_traceback(caplog):
    """Outside DRF (admin, chart pages) Django alone sees the exception: its log line is the only place the
    operator finds the traceback, so it is kept while Django's per-response lines stay silenced."""
    Client(raise_request_exception=False).get("/boom/plain")
    logged = [record for record in caplog.records if record.name == "django.request"]
    assert len(logged) == 1 and logged[0].levelname == "ERROR"
    assert logged[0].exc_info and "secret internals in a plain Django view" in str(logged[0].exc_info[1])


def test_an_answered_error_logs_no_django_request_line(api_client, caplog):
    """4xx and 5xx responses the app answered itself are in the request log already (request_finished)."""
    assert api_client.get("/api/does-not-exist").status_code == 404
    assert api_client.get("/api/auth/me").status_code == 401
    assert not [record for record in caplog.records if record.name == "django.request"]
