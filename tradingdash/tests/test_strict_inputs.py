"""Every POST body is validated strictly: a field the endpoint does not know is a 400 that names it."""

import pytest

from predictions.models import TaskRecord

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [
        "/api/predictions/generate/TCS",
        "/api/predictions/train/TCS",
        "/api/signals/generate/TCS",
        "/api/market/sync/TCS",
    ],
)
def test_unknown_body_field_is_400_naming_it(staff_client, path):
    response = staff_client.post(path, {"models": ["bogus"], "timeframe": "1D"}, format="json")
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "validation_error" and list(error["details"]) == ["models"]
    assert not TaskRecord.objects.exists()


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/auth/login", {"username": "a", "password": "b", "remember": True}),
        ("/api/auth/refresh", {"refresh": "x", "remember": True}),
        ("/api/auth/logout", {"refresh": "x", "remember": True}),
    ],
)
def test_unknown_auth_field_is_400(staff_client, path, body):
    response = staff_client.post(path, body, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["details"]) == ["remember"]
