"""API requests skip the admin's middleware (sessions, Django's auth, messages); the admin keeps them."""

import pytest

pytestmark = pytest.mark.django_db


def test_api_requests_get_no_session_and_no_messages(auth_client):
    auth_client.cookies["sessionid"] = "whatever"
    response = auth_client.get("/api/market/status")
    assert response.status_code == 200
    request = response.wsgi_request
    assert not hasattr(request, "session") and not hasattr(request, "_messages")
    assert not response.cookies


def test_api_requests_still_know_their_user(api_client, user):
    from rest_framework_simplejwt.tokens import AccessToken

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    assert api_client.get("/api/auth/me").json()["id"] == user.pk


def test_the_admin_keeps_sessions_and_csrf(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert hasattr(response.wsgi_request, "session") and hasattr(response.wsgi_request, "_messages")
    assert "csrftoken" in response.cookies
    assert 'name="csrfmiddlewaretoken"' in response.content.decode()


def test_admin_login_works(client, staff_user):
    from accounts.tests.factories import PASSWORD

    client.get("/admin/login/")
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": staff_user.username, "password": PASSWORD, "next": "/admin/"},
    )
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_a_browser_dashboard_may_read_retry_after_and_the_request_id(auth_client, settings):
    """The API's 429 and 503 say when to retry in Retry-After and every response names its X-Request-ID; a
    dashboard served from another origin sees neither unless CORS exposes them."""
    settings.CORS_ALLOWED_ORIGINS = ["http://localhost:3000"]
    response = auth_client.get("/api/market/status", HTTP_ORIGIN="http://localhost:3000")
    assert response["Access-Control-Allow-Origin"] == "http://localhost:3000"
    exposed = {name.strip().lower() for name in response["Access-Control-Expose-Headers"].split(",")}
    assert {"retry-after", "x-request-id"} <= exposed
