"""Security properties of the whole API, derived from the OpenAPI schema so new endpoints are covered as they
are added: authentication everywhere but the three public auth operations, staff-only operations, resource
limits, throttling of the endpoints that start work, and JSON errors for hostile bodies."""

import json
import re
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import resolve
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.permissions import IsAdminUser
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from conftest import _client_for

pytestmark = pytest.mark.django_db

PUBLIC = {("POST", "/api/auth/register"), ("POST", "/api/auth/login"), ("POST", "/api/auth/refresh")}
STAFF_ONLY = {
    ("POST", "/api/market/sync/{symbol}"),
    ("POST", "/api/predictions/train/{symbol}"),
    ("GET", "/api/market/quality/{symbol}"),
}
# Values for path parameters: valid enough to reach the view's own checks.
PATH_VALUES = {
    "symbol": "TCS",
    "task_id": "0123456789abcdef0123456789abcdef",
    "prediction_id": "1",
    "id": "1",
}
SLOW = 1.5  # seconds; every request here should take a fraction of that


SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
OPERATIONS = [
    (method.upper(), path, operation)
    for path, item in SCHEMA["paths"].items()
    for method, operation in item.items()
    if method in {"get", "post", "put", "patch", "delete"}
]


def _is_public(operation: dict) -> bool:
    return operation.get("security", [{}]) in ([], [{}])


def _url(path: str) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        assert name in PATH_VALUES, f"add a value for path parameter {{{name}}} to PATH_VALUES"
        return PATH_VALUES[name]

    return re.sub(r"{(\w+)}", value, path)


def _call(client, method: str, path: str, body: dict | None = None):
    return getattr(client, method.lower())(_url(path), body or {}, format="json")


def _params(operations, keep):
    return [pytest.param(m, p, id=f"{m} {p}") for m, p, op in operations if keep(m, p, op)]


def test_schema_has_operations():
    assert len(OPERATIONS) >= 15


def test_only_register_login_and_refresh_are_public():
    assert {(m, p) for m, p, op in OPERATIONS if _is_public(op)} == PUBLIC


@pytest.mark.parametrize(("method", "path"), _params(OPERATIONS, lambda m, p, op: not _is_public(op)))
class TestEveryProtectedOperation:
    def test_without_token_is_401_json(self, api_client, method, path):
        response = _call(api_client, method, path)
        assert response.status_code == 401, response.content
        assert response.json()["error"]["code"] == "not_authenticated"
        assert response["WWW-Authenticate"].startswith("Bearer")

    def test_with_a_forged_token_is_401_json(self, method, path):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Bearer eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxfQ.forged")
        response = _call(client, method, path)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "token_not_valid"


def _requires_staff(method: str, path: str) -> bool:
    view = resolve(_url(path)).func.view_class
    return IsAdminUser in view.permission_classes


def test_staff_only_operations_are_the_expected_ones():
    assert {(m, p) for m, p, _ in OPERATIONS if _requires_staff(m, p)} == STAFF_ONLY


@pytest.mark.parametrize(("method", "path"), _params(OPERATIONS, lambda m, p, op: (m, p) in STAFF_ONLY))
def test_staff_only_operation_is_403_for_a_normal_user_and_open_to_staff(
    auth_client, staff_client, method, path
):
    response = _call(auth_client, method, path, {"timeframe": "1D"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    # Staff get past the permission check (to input validation: no work is started).
    assert _call(staff_client, method, path, {"timeframe": "not-a-timeframe"}).status_code == 400


def timed(client, url: str, **kwargs):
    started = time.perf_counter()
    response = client.get(url, **kwargs)
    elapsed = time.perf_counter() - started
    assert elapsed < SLOW, f"{url} took {elapsed:.2f}s"
    return response


class TestResourceLimits:
    @pytest.mark.parametrize(
        "url",
        [
            "/api/market/historical/TCS?limit=1000000000",
            "/api/predictions/TCS?limit=1000000000",
            "/api/signals/TCS?limit=1000000000",
            "/api/market/historical/TCS?limit=-1",
            "/api/market/historical/TCS?limit=99999999999999999999999999999999",
        ],
    )
    def test_huge_limit_is_400(self, auth_client, url):
        response = timed(auth_client, url)
        assert response.status_code == 400
        assert "limit" in response.json()["error"]["details"]

    @pytest.mark.parametrize(("timeframe", "limit"), [("1D", 500), ("1D", 5000), ("1W", 5000)])
    def test_fifty_years_of_daily_or_weekly_candles_is_fine_and_bounded_by_limit(
        self, auth_client, timeframe, limit
    ):
        start = (timezone.now() - timedelta(days=50 * 365)).date()
        response = timed(
            auth_client, f"/api/market/historical/TCS?timeframe={timeframe}&start={start}&limit={limit}"
        )
        assert response.status_code == 200
        assert 0 < response.json()["count"] <= limit

    @pytest.mark.parametrize("timeframe", ["1m", "5m", "15m"])
    def test_intraday_candles_over_a_year_are_400(self, auth_client, timeframe):
        start = (timezone.now() - timedelta(days=365)).date()
        response = timed(auth_client, f"/api/market/historical/TCS?timeframe={timeframe}&start={start}")
        assert response.status_code == 400
        assert "start" in response.json()["error"]["details"]

    def test_dates_out_of_range_are_400(self, auth_client):
        assert timed(auth_client, "/api/market/historical/TCS?start=0001-01-01").status_code == 400
        assert timed(auth_client, "/api/signals/TCS/backtest?end=9999-12-31").status_code == 400

    @pytest.mark.parametrize("count", [51, 500])
    def test_too_many_symbols_in_multiple_is_400(self, auth_client, count):
        symbols = ",".join(f"S{i}" for i in range(count))
        response = timed(auth_client, f"/api/market/multiple?symbols={symbols}")
        assert response.status_code == 400
        assert "symbols" in response.json()["error"]["details"]

    def test_very_long_symbols_parameter_is_400(self, auth_client):
        assert timed(auth_client, "/api/market/multiple?symbols=" + "A" * 100_000).status_code == 400


class TestHostileBodies:
    BIG = json.dumps({"timeframe": "1D", "padding": "x" * (2 * 1024 * 1024)})

    @pytest.mark.parametrize(
        ("path", "who"),
        [
            ("/api/auth/login", "anonymous"),
            ("/api/auth/register", "anonymous"),
            ("/api/signals/generate/TCS", "user"),
            ("/api/predictions/generate/TCS", "user"),
            ("/api/market/sync/TCS", "staff"),
        ],
    )
    def test_oversized_json_body_is_413_json(self, settings, path, who, user, staff_user):
        assert len(self.BIG) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        client = {"anonymous": APIClient(), "user": _client_for(user), "staff": _client_for(staff_user)}[who]
        started = time.perf_counter()
        response = client.post(path, self.BIG, content_type="application/json")
        assert time.perf_counter() - started < SLOW
        assert response.status_code == 413
        assert response.json() == {
            "error": {"code": "request_too_large", "message": "Request body too large."}
        }

    def test_oversized_form_outside_the_api_is_413_json(self):
        response = Client().post(
            "/admin/login/", "a=" + "x" * (2 * 1024 * 1024), content_type="application/x-www-form-urlencoded"
        )
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "request_too_large"

    def test_deeply_nested_json_is_400_not_500(self, api_client):
        response = api_client.post("/api/auth/login", "[" * 100_000, content_type="application/json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "parse_error"

    @pytest.mark.parametrize("body", ["{", "NaN", '{"username": "\ud800"}', "\xff\xfe"])
    def test_malformed_json_is_400(self, api_client, body):
        response = api_client.post(
            "/api/auth/login", body.encode("utf-8", "surrogatepass"), content_type="application/json"
        )
        assert response.status_code == 400

    def test_body_that_is_not_an_object_is_400(self, auth_client):
        for body in ("[]", '"text"', "1", "null"):
            response = auth_client.post("/api/signals/generate/TCS", body, content_type="application/json")
            assert response.status_code == 400, body


GENERATION = [
    ("/api/predictions/generate/TCS", "user"),
    ("/api/signals/generate/TCS", "user"),
    ("/api/market/sync/TCS", "staff"),
]


@pytest.mark.parametrize(("path", "who"), GENERATION)
def test_generation_endpoints_are_throttled_per_user(settings, user, staff_user, path, who):
    settings.GENERATION_THROTTLE_RATE = "2/minute"
    client = _client_for(staff_user if who == "staff" else user)
    bad = {"timeframe": "not-a-timeframe"}  # rejected after the throttle counted it: no work is started
    for _ in range(2):
        assert client.post(path, bad, format="json").status_code == 400
    response = client.post(path, bad, format="json")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    assert response.json()["error"]["code"] == "throttled"
    # Per user: someone else is not affected.
    other = _client_for(UserFactory(is_staff=who == "staff"))
    assert other.post(path, bad, format="json").status_code == 400


def test_forged_forwarded_for_does_not_escape_the_per_ip_auth_throttle(api_client, settings):
    settings.AUTH_THROTTLE_RATE = "2/minute"
    statuses = [
        api_client.post(
            "/api/auth/register",
            {"username": f"u{i}", "email": f"u{i}@example.com", "password": "x"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{i}",
        ).status_code
        for i in range(3)
    ]
    assert statuses[-1] == 429


@pytest.mark.parametrize("field", ["username", "password"])
@pytest.mark.parametrize("value", ["a\u0000b", "\f", " \x1c "])
def test_nul_or_blank_text_is_400_and_documented(api_client, field, value):
    body = {"username": "someone", "password": "secret-pass-1234", field: value}
    assert api_client.post("/api/auth/login", body, format="json").status_code == 400
    login = {m: op for m, p, op in OPERATIONS if p == "/api/auth/login"}["POST"]
    ref = login["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    pattern = SCHEMA["components"]["schemas"][ref]["properties"][field]["pattern"]
    assert re.fullmatch(pattern, value) is None
    assert re.fullmatch(pattern, " ok ")
