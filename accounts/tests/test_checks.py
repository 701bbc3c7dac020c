"""Account settings out of range fail the system checks (accounts/checks.py) instead of breaking sign-in."""

import pytest

from accounts.checks import check_auth_settings


def test_the_defaults_pass():
    assert check_auth_settings(None) == []


@pytest.mark.parametrize("rate", ["5", "5/fortnight", "", "five/minute", "0/minute"])
def test_a_throttle_rate_that_is_no_rate_fails(settings, rate):
    """Read at each request: "5" or "5/fortnight" made every login, registration and password change a 500."""
    settings.AUTH_THROTTLE_RATE = rate
    [error] = check_auth_settings(None)
    assert error.id == "accounts.E003" and "AUTH_THROTTLE_RATE" in error.msg


@pytest.mark.parametrize("rate", ["5/minute", "100/hour", "1/s", "30/day"])
def test_rates_drf_reads_pass(settings, rate):
    settings.GENERATION_THROTTLE_RATE = rate
    assert check_auth_settings(None) == []


@pytest.mark.parametrize("seconds", [-1, 1800, 3600, float("inf"), float("nan")])
def test_a_user_cache_lifetime_outside_the_access_tokens_fails(settings, seconds):
    settings.AUTH_USER_CACHE_SECONDS = seconds  # the access token lives 30 minutes
    [error] = check_auth_settings(None)
    assert error.id == "accounts.E002"


@pytest.mark.parametrize("name", ["ACCESS_TOKEN_EXPIRE_MINUTES", "REFRESH_TOKEN_EXPIRE_DAYS"])
def test_a_token_lifetime_below_one_fails(settings, name):
    settings.AUTH_USER_CACHE_SECONDS = 0
    setattr(settings, name, 0)
    assert "accounts.E001" in {error.id for error in check_auth_settings(None)}
