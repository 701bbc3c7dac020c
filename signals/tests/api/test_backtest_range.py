from datetime import UTC, datetime

import pytest
import time_machine

from market.services import candles_sync
from market.sources import get_provider
from market.timeframes import Timeframe

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 3, 11, 30, tzinfo=UTC)


@pytest.fixture
def history():
    with time_machine.travel(NOW, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
        yield


@pytest.mark.parametrize(
    "query",
    [
        "start=2030-01-01",  # after the last stored candle (found by fuzzing: it was a 500)
        "end=1990-01-01",  # before the first
        "start=2026-01-03&end=2026-01-03",  # a Saturday
    ],
)
def test_backtest_of_a_range_without_candles_is_422(auth_client, history, query):
    with time_machine.travel(NOW, tick=False):
        response = auth_client.get(f"/api/signals/TCS/backtest?timeframe=1D&{query}")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "empty_range"


@pytest.mark.parametrize(
    ("query", "status"),
    [
        # A date is exchange-local midnight, a datetime may be in UTC (found by fuzzing: mixing them was a 500).
        ("start=2025-01-01&end=2026-05-01T01:00:00Z", 200),
        ("start=2000-01-01&end=2000-02-01T01:00:01Z", 422),
    ],
)
def test_backtest_with_a_date_and_a_utc_datetime(auth_client, history, query, status):
    with time_machine.travel(NOW, tick=False):
        response = auth_client.get(f"/api/signals/TCS/backtest?timeframe=1D&{query}")
    assert response.status_code == status, response.json()


def test_a_backtest_from_before_the_stored_history_fetches_it_first(auth_client, history):
    # 900 days stored; the backtest asks from 2019. It used to run on the stored years only (from 2023), its
    # `start` quietly later than the one asked, because only the default history was ever fetched.
    with time_machine.travel(NOW, tick=False):
        response = auth_client.get("/api/signals/TCS/backtest?timeframe=1D&start=2019-01-01&end=2020-01-01")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["start"].startswith("2019-01-01") and body["end"].startswith("2020-01-01")  # through that day
