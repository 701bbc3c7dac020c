from datetime import UTC, datetime

import pytest
import time_machine
from celery.exceptions import Retry

from market import tasks
from market.models import MarketData
from market.providers.errors import ProviderUnavailable, RateLimited, SymbolNotFound
from market.tests.factories import FrameProvider

pytestmark = pytest.mark.django_db


@pytest.fixture
def provider(monkeypatch):
    def install(p):
        monkeypatch.setattr("market.services.get_provider", lambda name=None: p)
        return p

    return install


@pytest.mark.parametrize("failure", [RateLimited("429"), ProviderUnavailable("timeout")])
def test_transient_provider_failures_are_retried_with_configured_backoff(
    provider, settings, monkeypatch, failure
):
    settings.MARKET_SYNC_RETRY_BACKOFF = 7
    settings.MARKET_SYNC_RETRY_BACKOFF_MAX = 9
    provider(FrameProvider(fail=failure))
    seen = {}

    def fake_retry(*, exc, countdown):
        seen.update(exc=exc, countdown=countdown)
        return Retry(exc=exc, when=countdown)

    monkeypatch.setattr(tasks.sync_symbol, "retry", fake_retry)
    with pytest.raises(Retry):
        tasks.sync_symbol.run("TCS.NS", "1D")
    assert seen["exc"] is failure
    assert 0 <= seen["countdown"] <= 9


def test_permanent_failures_are_not_retried(provider):
    provider(FrameProvider(fail=SymbolNotFound("NOPE.NS")))
    with pytest.raises(SymbolNotFound):
        tasks.sync_symbol.run("NOPE.NS", "1D")


def test_sync_task_returns_plain_json_values(settings):
    with time_machine.travel(datetime(2026, 6, 3, 12, 0, tzinfo=UTC), tick=False):
        result = tasks.sync_symbol.run("TCS.NS", "1D", 30)
    assert result["symbol"] == "TCS.NS" and result["inserted"] == MarketData.objects.count() > 0
    assert isinstance(result["last"], str)


def test_watchlist_sync_skips_closed_market_when_asked():
    with time_machine.travel(datetime(2026, 6, 6, 6, 0, tzinfo=UTC), tick=False):  # Saturday
        assert tasks.sync_watchlist(["5m"], only_when_open=True)["enqueued"] == 0
