import pytest
import structlog
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from tradingdash.cache import local_caches_clear


@pytest.fixture(autouse=True, scope="session")
def _uncached_loggers():
    """structlog's capture_logs cannot see a logger that cached its processors on first use (as production
    configures them): in tests every call reads the current configuration."""
    structlog.configure(cache_logger_on_first_use=False)


@pytest.fixture(autouse=True)
def _clear_cache():
    """Throttle counters and cached payloads must not leak between tests."""
    cache.clear()
    local_caches_clear()
    yield
    cache.clear()
    local_caches_clear()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def staff_user(db):
    return UserFactory(is_staff=True)


def _client_for(user) -> APIClient:
    """Authenticated without a JWT, so tests can move the clock freely (JWT itself is tested in accounts)."""
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def auth_client(user) -> APIClient:
    return _client_for(user)


@pytest.fixture
def staff_client(staff_user) -> APIClient:
    return _client_for(staff_user)
