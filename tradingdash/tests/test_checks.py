import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from tradingdash.checks import (
    check_limits,
    check_market_data_provider,
    check_production_secrets,
    check_task_limits,
    check_tls_proxy,
)


@pytest.mark.parametrize("name", ["synthetic", "csv", "yfinance", "my_package.feeds:build"])
def test_a_known_provider_or_a_factory_path_passes(settings, name):
    settings.MARKET_DATA_PROVIDER = name
    assert check_market_data_provider(None) == []


@pytest.mark.parametrize("name", ["synthentic", "Synthetic", "", "my_package.feeds"])
def test_a_misspelled_provider_fails_the_checks_that_migrate_runs(settings, name):
    """A typo let `make run` migrate and serve, then answered every market request with a 500."""
    settings.MARKET_DATA_PROVIDER = name
    [error] = check_market_data_provider(None)
    assert error.level == checks.ERROR and error.id == "tradingdash.E001"
    assert repr(name) in error.msg and "yfinance, synthetic, csv" in error.hint


def test_the_check_is_registered(settings):
    settings.MARKET_DATA_PROVIDER = "synthentic"
    assert "tradingdash.E001" in {message.id for message in checks.run_checks()}


LIMITS = {
    "STREAM_MAX_SYMBOLS": "at least 1",
    "STREAM_MAX_PER_USER": "at least 1",
    "STREAM_MESSAGE_BURST": "at least 1",
    "WATCHLIST_MAX_SYMBOLS": "at least 1",
    "WATCHLIST_MAX_LISTS": "at least 1",
    "ALERT_MAX_PER_USER": "at least 1",
    "ALERT_MAX_CHANNELS": "at least 1",
    "ALERT_EVALUATE_MAX_BARS": "at least 1",
    "STREAM_HEARTBEAT_SECONDS": "above 0",
    "STREAM_AUTH_TIMEOUT_SECONDS": "above 0",
    "STREAM_MESSAGE_RATE": "above 0",
    "STREAM_SEND_TIMEOUT_SECONDS": "above 0",
    "STREAM_SUBSCRIPTION_TTL": "above 0",
    "QUOTE_REFRESH_SECONDS": "above 0",
    "ALERT_WEBHOOK_TIMEOUT": "above 0",
    "ALERT_DELIVERY_RETRY_BACKOFF": "above 0",
    "ALERT_DELIVERY_RETRY_BACKOFF_MAX": "above 0",
    "ALERT_DELIVERY_MAX_AGE": "above 0",
    "ALERT_DELIVERY_OVERDUE": "above 0",
}


def test_the_default_limits_pass():
    assert check_limits(None) == []


@pytest.mark.parametrize("value", [0, -1, float("nan")])
@pytest.mark.parametrize("name", sorted(LIMITS))
def test_a_limit_out_of_range_fails_naming_the_setting_and_its_range(settings, name, value):
    """STREAM_MESSAGE_BURST=0 started the server and refused every client message; each of these quietly stops
    the stream, watchlists or alerts working for everyone."""
    setattr(settings, name, value)
    [error] = check_limits(None)
    assert error.level == checks.ERROR and error.id == "tradingdash.E002"
    assert error.msg.startswith(f"{name}={value!r} is out of range: ")
    assert error.hint == f"Set {name} {LIMITS[name]}."


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_the_smallest_value_in_range_passes(settings, name):
    setattr(settings, name, 1 if LIMITS[name] == "at least 1" else 0.5)
    settings.STREAM_SUBSCRIPTION_TTL = max(
        settings.STREAM_SUBSCRIPTION_TTL, 2 * settings.STREAM_HEARTBEAT_SECONDS + 1
    )
    assert check_limits(None) == []


@pytest.mark.parametrize("ttl", [15, 30])
def test_a_subscription_ttl_within_two_heartbeats_fails(settings, ttl):
    """A symbol is put in the live set again at most once a heartbeat period per process: it could lapse before
    the next time, and its quotes stop being refreshed while clients still watch it."""
    settings.STREAM_HEARTBEAT_SECONDS, settings.STREAM_SUBSCRIPTION_TTL = 15, ttl
    [error] = check_limits(None)
    assert error.id == "tradingdash.E003" and "STREAM_SUBSCRIPTION_TTL" in error.msg
    assert error.hint == "Set STREAM_SUBSCRIPTION_TTL above 2 x STREAM_HEARTBEAT_SECONDS."
    settings.STREAM_SUBSCRIPTION_TTL = 31
    assert check_limits(None) == []


def test_the_limits_check_is_registered_and_fails_manage_py_check(settings):
    settings.STREAM_MESSAGE_BURST = 0
    assert "tradingdash.E002" in {message.id for message in checks.run_checks()}
    with pytest.raises(SystemCheckError, match="STREAM_MESSAGE_BURST=0"):
        call_command("check")


STRONG_KEY = "a-long-random-production-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


@pytest.mark.parametrize("key", ["change-me", "x" * 60, "django-insecure-" + "abcdefghij" * 5])
def test_a_weak_secret_key_with_debug_off_fails_the_checks_that_migrate_runs(settings, key):
    """`.env.example`'s SECRET_KEY=change-me passed compose's migrate and signed sessions and every JWT; Django
    warns about it only under `check --deploy`."""
    settings.DEBUG = False
    settings.SECRET_KEY = key
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "SIGNING_KEY": key}
    [error] = check_production_secrets(None)
    assert error.level == checks.ERROR and error.id == "tradingdash.E004"
    assert error.msg.startswith("SECRET_KEY is too weak") and key not in error.msg
    with pytest.raises(SystemCheckError, match="SECRET_KEY is too weak"):
        call_command("check")


def test_a_short_jwt_signing_key_with_debug_off_fails(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = STRONG_KEY
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "SIGNING_KEY": "short-jwt-key"}
    [error] = check_production_secrets(None)
    assert error.id == "tradingdash.E004" and error.msg.startswith("JWT_SIGNING_KEY is too weak")


def test_strong_keys_or_debug_on_pass(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = STRONG_KEY
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "SIGNING_KEY": STRONG_KEY}
    assert check_production_secrets(None) == []
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "SIGNING_KEY": "0123456789abcdef0123456789abcdef"}
    assert check_production_secrets(None) == []
    settings.DEBUG = True
    settings.SECRET_KEY = "dev-only-insecure-key"
    assert check_production_secrets(None) == []


@pytest.mark.parametrize("cookie", ["SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"])
def test_behind_a_tls_proxy_an_insecure_cookie_fails_the_checks(settings, cookie):
    """USE_X_FORWARDED_PROTO=1 with the cookies' Secure flag off: an http:// request sent the admin's session in
    clear; Django warns only under `check --deploy`."""
    settings.DEBUG = False
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    assert check_tls_proxy(None) == []
    setattr(settings, cookie, False)
    [error] = check_tls_proxy(None)
    assert error.id == "tradingdash.E005" and cookie in error.msg and error.hint == f"Set {cookie}=1."
    with pytest.raises(SystemCheckError, match=cookie):
        call_command("check")


def test_an_https_redirect_behind_a_proxy_that_cannot_see_https_fails(settings):
    """SECURE_SSL_REDIRECT=1 NUM_PROXIES=1 without USE_X_FORWARDED_PROTO: every request redirected for ever."""
    settings.DEBUG = False
    settings.SECURE_PROXY_SSL_HEADER = None
    settings.SECURE_SSL_REDIRECT = True
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    [error] = check_tls_proxy(None)
    assert error.id == "tradingdash.E005" and "USE_X_FORWARDED_PROTO" in error.hint
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 0}
    assert check_tls_proxy(None) == []  # TLS straight to the app: its own redirect is right


def test_no_proxy_and_no_tls_is_not_this_checks_business(settings):
    settings.DEBUG = False
    settings.SECURE_PROXY_SSL_HEADER = None
    settings.SECURE_SSL_REDIRECT = False
    assert check_tls_proxy(None) == []


def test_the_default_task_limits_pass():
    assert check_task_limits(None) == []


def test_a_visibility_timeout_within_the_task_time_limit_fails(settings):
    """CELERY_VISIBILITY_TIMEOUT=600 with the 1800 s limit: Redis handed a training still running after ten
    minutes to a second worker (tasks are acknowledged late), and the same model trained twice at once."""
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "visibility_timeout": 600,
    }
    [warning] = check_task_limits(None)
    assert warning.level == checks.WARNING and warning.id == "tradingdash.W006"
    assert "CELERY_VISIBILITY_TIMEOUT=600" in warning.msg
    with pytest.raises(SystemCheckError, match="CELERY_VISIBILITY_TIMEOUT=600"):
        call_command("check", fail_level="WARNING")


@pytest.mark.parametrize("soft", [1800, 2400, 0])
def test_a_soft_limit_not_below_the_hard_one_fails(settings, soft):
    settings.CELERY_TASK_TIME_LIMIT, settings.CELERY_TASK_SOFT_TIME_LIMIT = 1800, soft
    [error] = check_task_limits(None)
    assert error.id == "tradingdash.E006" and "CELERY_TASK_SOFT_TIME_LIMIT" in error.msg


def test_no_hard_time_limit_fails(settings):
    settings.CELERY_TASK_TIME_LIMIT = 0
    [error] = check_task_limits(None)
    assert error.id == "tradingdash.E006" and "no time limit" in error.msg
