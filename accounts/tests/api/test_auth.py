import json
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import time_machine
from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()

STRONG = "Tr4d1ng-dash-passphrase!"


def register(client, **overrides):
    payload = {"username": "alice", "email": "alice@example.com", "password": STRONG, **overrides}
    return client.post("/api/auth/register", payload, format="json")


def login(client, username, password=PASSWORD):
    return client.post("/api/auth/login", {"username": username, "password": password}, format="json")


def bearer(client, token):
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


class RegisteredMeanwhile:
    """A password validator standing for a second registration of the same name and email that commits while
    this one is being validated (its password hashed and checked), i.e. after the uniqueness checks passed."""

    def validate(self, password, user=None):
        if user is not None and not User.objects.filter(username=user.username).exists():
            User.objects.create_user(username=user.username, email=user.email.upper(), password=password)

    def get_help_text(self):
        return ""


class TestRegister:
    def test_creates_user_and_returns_public_fields(self, api_client):
        response = register(api_client)
        assert response.status_code == 201
        body = response.json()
        assert set(body) == {"id", "username", "email", "date_joined"}
        user = User.objects.get(username="alice")
        assert user.check_password(STRONG)
        assert user.password.startswith("bcrypt_sha256$")

    def test_password_never_in_response(self, api_client):
        response = register(api_client)
        assert STRONG not in response.content.decode()

    def test_privilege_fields_are_refused(self, api_client):
        response = register(api_client, is_staff=True, is_superuser=True)
        assert response.status_code == 400
        assert set(response.json()["error"]["details"]) == {"is_staff", "is_superuser"}
        assert not User.objects.filter(username="alice").exists()

    def test_duplicate_username_is_field_error(self, api_client):
        UserFactory(username="alice")
        response = register(api_client, email="other@example.com")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "validation_error"
        assert "username" in response.json()["error"]["details"]

    @pytest.mark.parametrize("username", ["Alice", "ALICE"])
    def test_a_username_differing_only_in_case_is_400(self, api_client, username):
        """Login matches usernames exactly: "Alice" beside "alice" is a second account that its look-alike's
        owner cannot tell apart (in admin, in logs) and that answers 401 to the one typing the other case."""
        UserFactory(username="alice")
        response = register(api_client, username=username, email="other@example.com")
        assert response.status_code == 400, response.content
        assert set(response.json()["error"]["details"]) == {"username"}
        assert User.objects.count() == 1

    def test_the_same_account_registered_concurrently_is_400_not_500(self, api_client, settings):
        settings.AUTH_PASSWORD_VALIDATORS = [{"NAME": "accounts.tests.api.test_auth.RegisteredMeanwhile"}]
        response = register(api_client)
        assert response.status_code == 400, response.content
        assert response.json()["error"]["code"] == "validation_error"
        assert set(response.json()["error"]["details"]) == {"username", "email"}
        assert User.objects.filter(username="alice").count() == 1

    def test_a_username_equal_to_a_taken_one_after_unicode_normalisation_is_400(self, api_client):
        """Django stores usernames NFKC-normalised: fullwidth "ａｌｉｃｅ" is saved as "alice"."""
        UserFactory(username="alice")
        response = register(api_client, username="\uff41\uff4c\uff49\uff43\uff45", email="other@example.com")
        assert response.status_code == 400, response.content
        assert set(response.json()["error"]["details"]) == {"username"}
        assert User.objects.count() == 1

    def test_an_email_equal_to_a_taken_one_as_the_database_lowercases_it_is_400(self, api_client):
        """The unique index is on LOWER(email); Django's iexact compares UPPER(), which differs for a few letters:
        the Kelvin sign lower-cases to "k" but upper-cases to itself."""
        UserFactory(username="kate", email="kate@example.com")
        response = register(api_client, username="kate2", email="\u212aate@example.com")
        assert response.status_code == 400, response.content
        assert set(response.json()["error"]["details"]) == {"email"}
        assert User.objects.count() == 1

    def test_duplicate_email_differing_only_in_case(self, api_client):
        UserFactory(username="bob", email="alice@example.com")
        response = register(api_client, email="ALICE@Example.COM")
        assert response.status_code == 400
        assert "email" in response.json()["error"]["details"]
        assert User.objects.count() == 1

    @pytest.mark.parametrize("username", ["bob@example.com", "Bob@Example.com"])
    def test_a_username_that_is_another_accounts_email_is_400(self, api_client, username):
        """Login takes an exact username before an email: a stranger named "bob@example.com" would stand in
        front of Bob's login by email (Bob's password checked against the stranger's account: always 401)."""
        bob = UserFactory(username="bob", email="bob@example.com")
        response = register(api_client, username=username, email="mallory@example.com")
        assert response.status_code == 400, response.content
        assert set(response.json()["error"]["details"]) == {"username"}
        assert list(User.objects.all()) == [bob]
        assert login(api_client, username).status_code == 200  # Bob, by his email, as typed

    @pytest.mark.parametrize("email", ["carol@example.com", "CAROL@example.com"])
    def test_an_email_that_is_another_accounts_username_is_400(self, api_client, email):
        """The other way round: with a username "carol@example.com" registered first, the Carol who then
        registers that email could never log in with it."""
        UserFactory(username="carol@example.com", email="mallory@example.com")
        response = register(api_client, username="carol", email=email)
        assert response.status_code == 400, response.content
        assert set(response.json()["error"]["details"]) == {"email"}
        assert User.objects.count() == 1

    def test_a_username_that_is_the_same_accounts_email_registers(self, api_client):
        response = register(api_client, username="alice@example.com", email="alice@example.com")
        assert response.status_code == 201, response.content
        assert login(api_client, "alice@example.com", STRONG).status_code == 200

    @pytest.mark.parametrize("password", ["short", "password123", "12345678901"])
    def test_weak_password_rejected(self, api_client, password):
        response = register(api_client, password=password)
        assert response.status_code == 400
        assert "password" in response.json()["error"]["details"]

    def test_bad_email_rejected(self, api_client):
        response = register(api_client, email="not-an-email")
        assert response.status_code == 400
        assert "email" in response.json()["error"]["details"]

    def test_missing_fields_listed(self, api_client):
        response = api_client.post("/api/auth/register", {}, format="json")
        assert response.status_code == 400
        assert set(response.json()["error"]["details"]) == {"username", "email", "password"}

    def test_malformed_json_is_400(self, api_client):
        response = api_client.post("/api/auth/register", "{not json", content_type="application/json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "parse_error"

    @pytest.mark.parametrize("path", ["/api/auth/register", "/api/auth/login"])
    @pytest.mark.parametrize("field", ["username", "password"])
    def test_a_lone_surrogate_escape_is_400_not_500(self, api_client, path, field):
        """ "\\ud800" is valid JSON but no text: it cannot be encoded for the database (nor hashed), a 500."""
        body = {"username": "alice", "email": "alice@example.com", "password": STRONG}
        if path.endswith("login"):
            del body["email"]
        raw = json.dumps(body).replace(json.dumps(body[field]), '"x\\ud800"')
        response = api_client.post(path, raw, content_type="application/json")
        assert response.status_code == 400, response.content
        assert response.json()["error"]["code"] == "parse_error"
        assert not User.objects.exists()

    def test_an_escaped_surrogate_pair_is_text_and_registers(self, api_client):
        raw = json.dumps(
            {"username": "alice", "email": "alice@example.com", "password": STRONG + "\U0001f600"}
        )
        assert "\\ud83d\\ude00" in raw  # the emoji as JSON escapes it: a valid pair
        assert api_client.post("/api/auth/register", raw, content_type="application/json").status_code == 201
        assert login(api_client, "alice", STRONG + "\U0001f600").status_code == 200

    def test_100_byte_password_registers_and_logs_in(self, api_client):
        long_password = "Zq9!" * 25
        assert len(long_password.encode()) == 100
        assert register(api_client, password=long_password).status_code == 201
        assert login(api_client, "alice", long_password).status_code == 200
        # bcrypt alone would accept any password sharing the first 72 bytes; bcrypt-SHA256 must not.
        assert login(api_client, "alice", long_password[:72] + "x" * 28).status_code == 401


class TestLogin:
    def test_returns_token_pair(self, api_client, user):
        response = login(api_client, user.username)
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60
        assert AccessToken(body["access"])["user_id"] == str(user.pk)

    def test_a_login_records_when_it_happened_and_a_failed_one_does_not(self, api_client, user):
        """Staff read last_login in the admin's user list (SIMPLE_JWT's UPDATE_LAST_LOGIN says it is kept):
        our login endpoint never set it, so every API user read as never having logged in."""
        at = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
        with time_machine.travel(at, tick=False):
            assert login(api_client, user.username).status_code == 200
        with time_machine.travel(at + timedelta(hours=1), tick=False):
            assert login(api_client, user.username, "wrong-password").status_code == 401
        user.refresh_from_db()
        assert user.last_login == at

    def test_the_username_as_typed_at_registration_logs_in(self, api_client):
        """Registration stores usernames NFKC-normalised (fullwidth "ａｌｉｃｅ", as a Japanese IME types it, is
        saved as "alice"); login compared the name as typed, so the same keystrokes answered 401."""
        fullwidth = "\uff41\uff4c\uff49\uff43\uff45"
        assert register(api_client, username=fullwidth).json()["username"] == "alice"
        assert login(api_client, fullwidth, STRONG).status_code == 200

    def test_email_any_case_works_as_username(self, api_client, user):
        assert login(api_client, user.email.upper()).status_code == 200

    def test_unknown_user_and_wrong_password_look_the_same(self, api_client, user):
        unknown = login(api_client, "nobody")
        wrong = login(api_client, user.username, "wrong-password")
        assert unknown.status_code == wrong.status_code == 401
        assert unknown.json() == wrong.json()
        assert unknown.json()["error"]["code"] == "invalid_credentials"

    def test_inactive_user_cannot_log_in(self, api_client):
        inactive = UserFactory(is_active=False)
        assert login(api_client, inactive.username).status_code == 401


class TestPasswordWhitespace:
    """DRF's CharField trims by default, so the API took "  secret " as "secret" while the admin and
    createsuperuser store it exactly: an account whose password staff set with outer spaces could never log in
    through the API, and one registered through it had spaces it did not know about."""

    SPACED = "  " + STRONG + " "

    def test_a_password_set_with_outer_spaces_in_the_admin_logs_in_as_typed(self, api_client):
        user = UserFactory(password=self.SPACED)
        assert login(api_client, user.username, self.SPACED).status_code == 200
        assert login(api_client, user.username, STRONG).status_code == 401

    def test_registration_keeps_the_password_exactly(self, api_client):
        assert register(api_client, password=self.SPACED).status_code == 201
        assert User.objects.get(username="alice").check_password(self.SPACED)
        assert login(api_client, "alice", self.SPACED).status_code == 200
        assert login(api_client, "alice", STRONG).status_code == 401

    def test_an_account_the_api_stored_trimmed_still_logs_in_with_the_spaces_its_owner_typed(
        self, api_client
    ):
        user = UserFactory(
            password=STRONG
        )  # as registration stored "  <STRONG> " before passwords were exact
        assert login(api_client, user.username, self.SPACED).status_code == 200
        assert login(api_client, user.username, STRONG).status_code == 200
        assert login(api_client, user.username, " x" + STRONG).status_code == 401

    def test_an_unknown_account_hashes_as_often_as_a_wrong_password_with_spaces(
        self, api_client, monkeypatch
    ):
        """The trimmed retry hashes twice for a known account: an unknown one must too, or response time tells
        which accounts exist."""
        from django.contrib.auth.hashers import BCryptSHA256PasswordHasher

        hashed = []
        original = BCryptSHA256PasswordHasher.encode  # one bcrypt run each (verify runs it too)
        monkeypatch.setattr(
            BCryptSHA256PasswordHasher,
            "encode",
            lambda self, *a, **kw: hashed.append(1) or original(self, *a, **kw),
        )
        user = UserFactory(password=STRONG + "!")
        hashed.clear()
        assert login(api_client, user.username, self.SPACED).status_code == 401
        known = len(hashed)
        hashed.clear()
        assert login(api_client, "nobody-here", self.SPACED).status_code == 401
        assert len(hashed) == known == 2


class TestTokens:
    def test_me(self, api_client, user):
        access = login(api_client, user.username).json()["access"]
        response = bearer(api_client, access).get("/api/auth/me")
        assert response.status_code == 200
        assert response.json() == {
            "id": user.pk,
            "username": user.username,
            "email": user.email,
            "is_active": True,
            "is_staff": False,
            "date_joined": response.json()["date_joined"],
        }

    def test_trailing_slash_variant_works(self, auth_client):
        assert auth_client.get("/api/auth/me/").status_code == 200

    def test_unauthenticated_is_401_json(self, api_client):
        response = api_client.get("/api/auth/me")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"

    def test_refresh_rotates_and_blacklists_old(self, api_client, user):
        refresh = login(api_client, user.username).json()["refresh"]
        response = api_client.post("/api/auth/refresh", {"refresh": refresh}, format="json")
        assert response.status_code == 200
        assert set(response.json()) == {"access", "refresh"}
        assert response.json()["refresh"] != refresh
        again = api_client.post("/api/auth/refresh", {"refresh": refresh}, format="json")
        assert again.status_code == 401

    def test_refresh_token_of_deleted_user_is_401_not_500(self, api_client):
        gone = UserFactory()
        refresh = str(RefreshToken.for_user(gone))
        gone.delete()
        response = api_client.post("/api/auth/refresh", {"refresh": refresh}, format="json")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "no_active_account"

    def test_refresh_token_issued_before_a_password_set_elsewhere_is_401(self, api_client, user):
        """Staff resetting a compromised account's password in admin (or manage.py changepassword) blacklists
        no refresh token: refresh answered 200 with a new pair whose access token every endpoint then refused."""
        refresh = login(api_client, user.username).json()["refresh"]
        user.set_password("A-new-passphrase-set-by-staff-9")
        user.save()
        response = api_client.post("/api/auth/refresh", {"refresh": refresh}, format="json")
        assert response.status_code == 401, response.content
        assert response.json()["error"]["code"] == "password_changed"

    def test_logout_blacklists_refresh(self, api_client, user):
        tokens = login(api_client, user.username).json()
        response = bearer(api_client, tokens["access"]).post(
            "/api/auth/logout", {"refresh": tokens["refresh"]}, format="json"
        )
        assert response.status_code == 205
        api_client.credentials()
        assert (
            api_client.post("/api/auth/refresh", {"refresh": tokens["refresh"]}, format="json").status_code
            == 401
        )

    def test_logout_cannot_revoke_another_users_token(self, api_client, user):
        other = UserFactory()
        their_refresh = str(RefreshToken.for_user(other))
        access = str(RefreshToken.for_user(user).access_token)
        response = bearer(api_client, access).post(
            "/api/auth/logout", {"refresh": their_refresh}, format="json"
        )
        assert response.status_code == 401
        assert (
            api_client.post("/api/auth/refresh", {"refresh": their_refresh}, format="json").status_code == 200
        )

    def test_expired_access_token_is_401(self, api_client, user):
        token = AccessToken.for_user(user)
        token.set_exp(lifetime=-timedelta(seconds=1))
        assert bearer(api_client, str(token)).get("/api/auth/me").status_code == 401

    def test_expired_access_token_says_it_expired_and_how_to_get_a_new_one(self, api_client, user):
        """After 30 minutes every dashboard meets this: "not valid for any token type" sent people looking for
        a bug in their token rather than to the refresh endpoint."""
        token = AccessToken.for_user(user)
        token.set_exp(lifetime=-timedelta(seconds=1))
        error = bearer(api_client, str(token)).get("/api/auth/me").json()["error"]
        assert error["code"] == "token_not_valid"
        assert "expired" in error["message"] and "/api/auth/refresh" in error["message"]

    def test_a_forged_token_is_not_said_to_have_expired(self, api_client, user):
        token = AccessToken.for_user(user)
        token.set_exp(lifetime=-timedelta(seconds=1))
        header, payload, signature = str(token).split(".")
        error = (
            bearer(api_client, f"{header}.{payload}.{signature[:-4]}AAAA").get("/api/auth/me").json()["error"]
        )
        assert error["code"] == "token_not_valid" and "expired" not in error["message"]

    def test_tampered_token_is_401(self, api_client, user):
        token = str(AccessToken.for_user(user))
        header, payload, signature = token.split(".")
        tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
        assert bearer(api_client, tampered).get("/api/auth/me").status_code == 401

    def test_wrong_key_is_401(self, api_client, user):
        claims = {"token_type": "access", "user_id": str(user.pk), "exp": int(time.time()) + 600, "jti": "x"}
        forged = jwt.encode(claims, "some-other-key-that-is-long-enough-0123456789", algorithm="HS256")
        assert bearer(api_client, forged).get("/api/auth/me").status_code == 401

    def test_alg_none_is_401(self, api_client, user):
        claims = {"token_type": "access", "user_id": str(user.pk), "exp": int(time.time()) + 600, "jti": "x"}
        unsigned = jwt.encode(claims, key=None, algorithm="none")
        assert bearer(api_client, unsigned).get("/api/auth/me").status_code == 401

    def test_refresh_token_used_as_access_is_401(self, api_client, user):
        refresh = str(RefreshToken.for_user(user))
        assert bearer(api_client, refresh).get("/api/auth/me").status_code == 401

    def test_token_of_deactivated_user_is_401(self, api_client, user):
        access = str(AccessToken.for_user(user))
        User.objects.filter(pk=user.pk).update(is_active=False)
        assert bearer(api_client, access).get("/api/auth/me").status_code == 401


class TestThrottle:
    def test_sixth_login_attempt_is_429_with_retry_after(self, api_client, user, settings):
        settings.AUTH_THROTTLE_RATE = "5/minute"
        for _ in range(5):
            assert login(api_client, user.username, "wrong").status_code == 401
        response = login(api_client, user.username, "wrong")
        assert response.status_code == 429
        assert int(response["Retry-After"]) > 0
        assert response.json()["error"]["code"] == "throttled"

    @staticmethod
    def _login_from(api_client, name: str, password: str, address: str):
        return api_client.post(
            "/api/auth/login", {"username": name, "password": password}, format="json", REMOTE_ADDR=address
        )

    def test_per_username_limit_holds_across_ips(self, api_client, user, settings):
        settings.AUTH_THROTTLE_RATE = "5/minute"
        for i in range(5):
            self._login_from(api_client, user.username, "x", f"10.0.0.{i + 1}")
        assert self._login_from(api_client, user.username, PASSWORD, "10.0.0.99").status_code == 429

    def test_per_account_limit_holds_whether_it_is_named_by_username_or_email(
        self, api_client, user, settings
    ):
        """Login takes the username or the account's email: both name one account, so guesses against it
        share one budget; alternating the two forms must not double it."""
        settings.AUTH_THROTTLE_RATE = "5/minute"
        for i in range(5):
            self._login_from(api_client, user.username, "x", f"10.0.1.{i + 1}")
        assert self._login_from(api_client, user.email.upper(), "x", "10.0.1.99").status_code == 429

    def test_per_account_limit_holds_whatever_unicode_form_names_it(self, api_client, settings):
        """Every NFKC form of a username ("ａlice", "aｌice", …: 2^n of them) names one account at login, so
        they share its budget: counted apart, each form was five more guesses."""
        settings.AUTH_THROTTLE_RATE = "5/minute"
        UserFactory(username="alice")
        forms = ["alice", "\uff41lice", "a\uff4cice", "al\uff49ce", "ali\uff43e"]
        for i, form in enumerate(forms):
            assert self._login_from(api_client, form, "x", f"10.0.2.{i + 1}").status_code == 401
        assert self._login_from(api_client, "alic\uff45", PASSWORD, "10.0.2.99").status_code == 429

    def test_login_stays_throttled_while_redis_is_down(self, api_client, user, settings, dead_cache):
        """The counters live in Redis; with Redis down every read was a miss and every write dropped, so login
        was not limited at all for the outage (password guessing at any rate). Each process now counts alone
        meanwhile."""
        settings.AUTH_THROTTLE_RATE = "5/minute"
        for _ in range(5):
            assert login(api_client, user.username, "wrong").status_code == 401
        response = login(api_client, user.username, "wrong")
        assert response.status_code == 429
        assert int(response["Retry-After"]) > 0

    def test_register_is_throttled_per_ip(self, api_client, settings):
        settings.AUTH_THROTTLE_RATE = "2/minute"
        for i in range(2):
            register(api_client, username=f"u{i}", email=f"u{i}@example.com")
        assert register(api_client, username="u9", email="u9@example.com").status_code == 429

    def test_rate_comes_from_setting(self, api_client, user, settings):
        settings.AUTH_THROTTLE_RATE = "1/minute"
        login(api_client, user.username)
        assert login(api_client, user.username).status_code == 429
