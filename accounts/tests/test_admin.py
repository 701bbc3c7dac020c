"""Staff adding accounts in the admin: every account has an email (login by email, one account per address)."""

import pytest
from django.contrib.auth import get_user_model

from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()
PASSWORD = "Very-long-admin-set-pass-123!"


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _add(client, **fields):
    form = {"username": "dev", "usable_password": "true", "password1": PASSWORD, "password2": PASSWORD}
    return client.post("/admin/accounts/user/add/", {**form, **fields, "_save": "Save"})


def test_an_account_added_in_admin_gets_its_email(admin_client):
    response = _add(admin_client, username="asha", email="asha@example.com")
    assert response.status_code == 302
    assert User.objects.get(username="asha").email == "asha@example.com"


def test_an_account_without_an_email_is_a_form_error_not_a_500(admin_client):
    """The add form had no email field: the first account was stored with "" (which the model requires), and
    the second one broke the unique index on LOWER(email): a 500."""
    for name in ("first", "second"):
        response = _add(admin_client, username=name)
        assert response.status_code == 200
        assert "email" in response.context["adminform"].form.errors
    assert not User.objects.filter(username__in=["first", "second"]).exists()


def test_an_email_another_account_has_in_any_case_is_a_form_error(admin_client):
    UserFactory(username="ravi", email="ravi@example.com")
    response = _add(admin_client, username="ravi2", email="RAVI@example.com")
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["email"] == ["A user with that email already exists."]
    assert not User.objects.filter(username="ravi2").exists()
