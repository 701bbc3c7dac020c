import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from accounts.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()

NEW = "An0ther-long-trading-passphrase"


def _login(client: APIClient, username: str, password: str = PASSWORD):
    return client.post("/api/auth/login", {"username": username, "password": password}, format="json")


def _change(client: APIClient, access: str, current: str, new: str, **extra):
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client.post(
        "/api/auth/password", {"current_password": current, "new_password": new}, format="json", **extra
    )


def test_change_sets_the_password_and_revokes_every_refresh_token(user):
    client = APIClient()
    first = _login(client, user.username).json()
    second = _login(client, user.username).json()
    response = _change(client, first["access"], PASSWORD, NEW)
    assert response.status_code == 204
    client.credentials()
    for tokens in (first, second):
        refreshed = client.post("/api/auth/refresh", {"refresh": tokens["refresh"]}, format="json")
        assert refreshed.status_code == 401
    assert _login(client, user.username, PASSWORD).status_code == 401
    assert _login(client, user.username, NEW).status_code == 200


def test_wrong_current_password_is_400_and_changes_nothing(user):
    client = APIClient()
    tokens = _login(client, user.username).json()
    response = _change(client, tokens["access"], "not-my-password", NEW)
    assert response.status_code == 400
    assert set(response.json()["error"]["details"]) == {"current_password"}
    client.credentials()
    assert client.post("/api/auth/refresh", {"refresh": tokens["refresh"]}, format="json").status_code == 200
    assert _login(client, user.username, PASSWORD).status_code == 200


def test_a_new_password_with_outer_spaces_is_kept_exactly_and_the_current_one_is_checked_as_typed():
    """The change endpoint trimmed both: a current password set with outer spaces in the admin was "wrong", and
    a new one with spaces was stored without them."""
    spaced = "  " + PASSWORD + " "
    user = UserFactory(password=spaced)
    client = APIClient()
    tokens = _login(client, user.username, spaced).json()
    assert _change(client, tokens["access"], spaced, " " + NEW + "  ").status_code == 204
    user.refresh_from_db()
    assert user.check_password(" " + NEW + "  ")
    assert not user.check_password(NEW)


@pytest.mark.parametrize("weak", ["short", "12345678901", "password123"])
def test_new_password_goes_through_the_validators(user, weak):
    client = APIClient()
    tokens = _login(client, user.username).json()
    response = _change(client, tokens["access"], PASSWORD, weak)
    assert response.status_code == 400
    assert "new_password" in response.json()["error"]["details"]


def test_similar_to_the_username_is_refused():
    user = UserFactory(username="ramanathan-trader")
    client = APIClient()
    tokens = _login(client, user.username).json()
    response = _change(client, tokens["access"], PASSWORD, "ramanathan-trader")
    assert response.status_code == 400


def test_needs_authentication(api_client):
    response = api_client.post(
        "/api/auth/password", {"current_password": PASSWORD, "new_password": NEW}, format="json"
    )
    assert response.status_code == 401


def test_guessing_the_current_password_is_throttled_per_user_across_ips(user, settings):
    settings.AUTH_THROTTLE_RATE = "3/minute"
    client = APIClient()
    access = _login(client, user.username).json()["access"]
    for i in range(2):  # the login above counted once against the IP, not against the user
        assert _change(client, access, "guess", NEW, REMOTE_ADDR=f"10.0.1.{i}").status_code == 400
    assert _change(client, access, "guess", NEW, REMOTE_ADDR="10.0.1.50").status_code == 400
    response = _change(client, access, PASSWORD, NEW, REMOTE_ADDR="10.0.1.99")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


def test_api_times_stay_utc_while_the_admin_shows_ist(auth_client, settings):
    assert settings.TIME_ZONE == "Asia/Kolkata"
    assert auth_client.get("/api/auth/me").json()["date_joined"].endswith("Z")


def test_unknown_body_field_is_400_naming_it_and_changes_nothing(user):
    """Bodies are validated strictly everywhere (issue 10): a field the endpoint does not know is not ignored."""
    client = APIClient()
    tokens = _login(client, user.username).json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    response = client.post(
        "/api/auth/password",
        {"current_password": PASSWORD, "new_password": NEW, "keep_sessions": True},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()["error"]["details"]) == {"keep_sessions"}
    client.credentials()
    assert _login(client, user.username, PASSWORD).status_code == 200


def test_a_token_from_before_a_change_made_in_another_process_cannot_change_the_password_back(user):
    """Reads may see another process's password change up to AUTH_USER_CACHE_SECONDS late; the password change
    itself must not: it checked the current password, and the token, against this process's cached row, so a
    thief holding the victim's old token and old password could take the account back within those seconds."""
    client = APIClient()
    stolen = _login(client, user.username).json()["access"]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {stolen}")
    assert client.get("/api/auth/me").status_code == 200  # this process now holds the user's row
    user.set_password(NEW)  # the victim's change, served by another web process
    User.objects.filter(pk=user.pk).update(password=user.password)

    response = _change(client, stolen, PASSWORD, "Thief-chosen-passphrase-31")
    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == "password_changed"
    client.credentials()
    assert _login(client, user.username, NEW).status_code == 200
