"""Coverage is a set of fetched intervals: reads fetch exactly what was never fetched, and nothing else."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from market.models import CandleSeries, CoverageInterval, MarketData
from market.tests.factories import FrameProvider, make_candles, provider_configured
from market.timeframes import Timeframe

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 1, 6, 30, tzinfo=UTC)  # Monday, NSE open
# Daily bars of TCS from 2023-01-01 to a day before NOW.
LISTED = datetime(2023, 1, 1, 18, 30, tzinfo=UTC)
CANDLES = make_candles((NOW - LISTED).days, start=LISTED)


@pytest.fixture
def provider(monkeypatch):
    provider = FrameProvider({("TCS.NS", Timeframe.D1): CANDLES})
    provider_configured(monkeypatch, provider)
    with time_machine.travel(NOW, tick=False):
        yield provider


def _history(client, query: str) -> dict:
    response = client.get(f"/api/market/historical/TCS?{query}")
    assert response.status_code == 200, response.content
    return response.json()


def _intervals() -> list[tuple[datetime, datetime]]:
    return list(CoverageInterval.objects.order_by("covered_from").values_list("covered_from", "covered_to"))


def _expected(start: datetime, end: datetime) -> int:
    return int(((CANDLES.index >= start) & (CANDLES.index < end)).sum())


JANUARY_2024 = _expected(
    datetime(2023, 12, 31, 18, 30, tzinfo=UTC), datetime(2024, 1, 31, 18, 30, tzinfo=UTC)
)


def test_an_empty_old_range_does_not_hide_a_later_one(auth_client, provider):
    assert _history(auth_client, "start=2018-01-01&end=2018-01-31")["count"] == 0
    body = _history(auth_client, "start=2024-01-01&end=2024-01-31")
    assert body["count"] == JANUARY_2024 and body["stale"] is False


def test_two_separate_reads_leave_the_middle_fetchable(auth_client, provider):
    _history(auth_client, "start=2024-01-01&end=2024-01-31")
    _history(auth_client, "start=2025-01-01&end=2025-01-31")
    assert len(_intervals()) == 2
    calls = len(provider.calls)
    body = _history(auth_client, "start=2024-06-01&end=2024-06-30")
    assert len(provider.calls) == calls + 1
    _, _, start, end = provider.calls[-1]
    assert (start, end) == (
        datetime(2024, 5, 31, 18, 30, tzinfo=UTC),
        datetime(2024, 6, 30, 18, 30, tzinfo=UTC),
    )
    assert body["count"] == _expected(start, end) > 0


def test_a_read_spanning_fetched_ranges_fetches_only_the_gaps(auth_client, provider):
    _history(auth_client, "start=2024-01-01&end=2024-01-31")
    _history(auth_client, "start=2024-03-01&end=2024-03-31")
    calls = len(provider.calls)
    body = _history(auth_client, "start=2023-12-01&end=2024-04-30&limit=5000")
    fetched = [(start.astimezone(UTC), end.astimezone(UTC)) for _, _, start, end in provider.calls[calls:]]
    assert [(s.date(), e.date()) for s, e in fetched] == [
        (datetime(2023, 11, 30).date(), datetime(2023, 12, 31).date()),
        (datetime(2024, 1, 28).date(), datetime(2024, 2, 29).date()),  # from 3 days before January's end
        (datetime(2024, 3, 28).date(), datetime(2024, 4, 30).date()),
    ]
    assert _intervals() == [
        (datetime(2023, 11, 30, 18, 30, tzinfo=UTC), datetime(2024, 4, 30, 18, 30, tzinfo=UTC))
    ]
    lo, hi = datetime(2023, 11, 30, 18, 30, tzinfo=UTC), datetime(2024, 4, 30, 18, 30, tzinfo=UTC)
    assert body["count"] == _expected(lo, hi)


def test_staff_sync_after_a_far_read_leaves_no_hole(staff_client, provider):
    _history(staff_client, "start=2024-01-01&end=2024-01-31")
    response = staff_client.post("/api/market/sync/TCS", {"timeframe": "1D", "days": 10}, format="json")
    assert response.status_code == 200
    body = _history(staff_client, "start=2025-01-01&end=2025-01-31")
    assert body["count"] == _expected(
        datetime(2024, 12, 31, 18, 30, tzinfo=UTC), datetime(2025, 1, 31, 18, 30, tzinfo=UTC)
    )
    assert body["count"] > 0


def test_a_range_before_the_history_is_remembered_without_claiming_what_follows(auth_client, provider):
    body = _history(auth_client, "start=2020-01-01&end=2023-01-31")
    assert body["count"] == _expected(LISTED, datetime(2023, 1, 31, 18, 30, tzinfo=UTC)) > 0
    assert CandleSeries.objects.get().history_starts_at == LISTED
    calls = len(provider.calls)
    assert _history(auth_client, "start=2010-01-01&end=2023-01-31")["count"] == body["count"]
    assert len(provider.calls) == calls  # nothing before the first bar is asked again
    later = _history(auth_client, "start=2024-01-01&end=2024-01-31")
    assert later["count"] == JANUARY_2024 and len(provider.calls) == calls + 1


def test_stale_tail_is_refreshed_at_most_every_five_minutes(auth_client, provider):
    minutes = make_candles(24 * 60, start=NOW - timedelta(hours=12), step=timedelta(minutes=1))
    provider.frames[("TCS.NS", Timeframe.M1)] = (
        minutes  # bars up to NOW + 12 h: the provider serves [start, now)
    )
    _history(auth_client, "timeframe=1m&start=2026-05-31")
    calls = len(provider.calls)
    with time_machine.travel(NOW + timedelta(minutes=3), tick=False):
        body = _history(auth_client, "timeframe=1m&start=2026-05-31&limit=5000")
    assert len(provider.calls) == calls  # refreshed 3 minutes ago
    assert datetime.fromisoformat(body["candles"][-1]["timestamp"]) == NOW - timedelta(minutes=1)
    with time_machine.travel(NOW + timedelta(minutes=6), tick=False):  # (another limit: not the cached body)
        body = _history(auth_client, "timeframe=1m&start=2026-05-31&limit=4999")
    assert len(provider.calls) == calls + 1
    _, _, start, end = provider.calls[-1]
    assert (start, end) == (NOW - timedelta(minutes=2), NOW + timedelta(minutes=6))
    assert datetime.fromisoformat(body["candles"][-1]["timestamp"]) == NOW + timedelta(minutes=5)
    assert CoverageInterval.objects.filter(series__timeframe="1m").count() == 1


def test_a_day_later_the_tail_gets_the_new_bar(auth_client, provider):
    _history(auth_client, "start=2026-05-01")
    stored = MarketData.objects.count()
    provider.frames[("TCS.NS", Timeframe.D1)] = make_candles(len(CANDLES) + 1, start=LISTED)
    with time_machine.travel(NOW + timedelta(days=1, minutes=1), tick=False):
        body = _history(auth_client, "start=2026-05-02")
    assert MarketData.objects.count() == stored + 1
    assert datetime.fromisoformat(body["candles"][-1]["timestamp"]) == LISTED + timedelta(days=len(CANDLES))


def test_a_read_never_stores_bars_older_than_its_start(auth_client, provider):
    _history(auth_client, "start=2026-05-01")
    MarketData.objects.filter(timestamp__gte=datetime(2026, 5, 25, tzinfo=UTC)).delete()
    with time_machine.travel(NOW + timedelta(days=2), tick=False):
        _history(auth_client, "start=2026-06-01")  # the tail refresh would re-fetch from 3 days before
    _, _, start, _ = provider.calls[-1]
    assert start == datetime(2026, 5, 31, 18, 30, tzinfo=UTC)
    assert not MarketData.objects.filter(
        timestamp__gte=datetime(2026, 5, 25, tzinfo=UTC), timestamp__lt=start
    ).exists()


def test_a_sync_that_stores_nothing_says_why(staff_client, provider):
    _history(staff_client, "start=2020-01-01&end=2023-01-31")  # learns where the history starts
    provider.frames[("TCS.NS", Timeframe.D1)] = CANDLES[CANDLES.index < datetime(2024, 1, 1, tzinfo=UTC)]
    response = staff_client.post("/api/market/sync/TCS", {"timeframe": "1D", "days": 10}, format="json")
    body = response.json()
    assert response.status_code == 200 and body["inserted"] == 0
    assert body["message"].startswith("the provider has no 1D data in this window (2026-05-22T06:30")
    assert body["message"].endswith(f"earliest available is {LISTED.isoformat()}")


def test_a_sync_that_stores_bars_has_no_message(staff_client, provider):
    body = staff_client.post("/api/market/sync/TCS", {"timeframe": "1D", "days": 10}, format="json").json()
    assert body["inserted"] > 0 and body["message"] is None


def test_admin_lists_series_and_their_intervals(staff_user, auth_client, provider):
    from django.test import Client

    _history(auth_client, "start=2024-01-01&end=2024-01-31")
    _history(auth_client, "start=2025-01-01&end=2025-01-31")
    staff_user.is_superuser = True
    staff_user.save()
    client = Client()
    client.force_login(staff_user)
    series = CandleSeries.objects.get()
    assert client.get("/admin/market/candleseries/").status_code == 200
    page = client.get(f"/admin/market/candleseries/{series.pk}/change/").content.decode()
    assert page.count('class="field-covered_from"') == 2
    assert client.get("/admin/market/coverageinterval/").status_code == 200


def test_the_coverage_read_in_sql_is_the_orms(monkeypatch):
    """candles_ensure reads a series' intervals in SQL on PostgreSQL: the same values, in the same order, as the
    ORM's read (SQLite's), and where the provider's history starts."""
    from django.db import connection

    from market.services import _coverage_of

    series = CandleSeries.objects.create(symbol="TCS.NS", timeframe="1D", history_starts_at=LISTED)
    CandleSeries.objects.create(symbol="TCS.NS", timeframe="1H")  # another series of the symbol
    for days in (300, 10, 100):
        CoverageInterval.objects.create(
            series=series,
            covered_from=LISTED + timedelta(days=days),
            covered_to=LISTED + timedelta(days=days + 50),
            last_synced_at=NOW - timedelta(days=days),
            source="csv",
        )
    series.history_source = "csv"
    series.save()
    CoverageInterval.objects.create(  # what another provider was asked: no claim about this one's
        series=series, covered_from=LISTED, covered_to=NOW, last_synced_at=NOW, source="yfinance"
    )
    in_sql = _coverage_of(symbol="TCS.NS", timeframe=Timeframe.D1, source="csv")
    others = _coverage_of(symbol="TCS.NS", timeframe=Timeframe.D1, source="yfinance")
    monkeypatch.setattr(connection, "vendor", "sqlite")
    assert in_sql == _coverage_of(symbol="TCS.NS", timeframe=Timeframe.D1, source="csv")
    assert others == _coverage_of(symbol="TCS.NS", timeframe=Timeframe.D1, source="yfinance")
    intervals, starts = in_sql
    assert [interval.covered_from for interval in intervals] == [
        LISTED + timedelta(days=d) for d in (10, 100, 300)
    ]
    assert starts == LISTED and intervals[0].last_synced_at == NOW - timedelta(days=10)
    assert [interval.covered_from for interval in others[0]] == [LISTED] and others[1] is None
    assert _coverage_of(symbol="TCS.NS", timeframe=Timeframe.H1, source="csv") == ([], None)


def test_a_first_read_inside_a_trading_suspension_does_not_hide_the_years_before_it(auth_client, provider):
    # TCS (listed long before 2023, as the catalogue says) did not trade from 1 to 23 June 2024: a read that
    # begins inside that suspension is not where the provider's history begins.
    from market.models import Instrument

    Instrument.objects.filter(symbol="TCS.NS").update(listed_on=date(2004, 8, 25))
    suspended = (CANDLES.index >= datetime(2024, 5, 31, 18, 30, tzinfo=UTC)) & (
        CANDLES.index < datetime(2024, 6, 23, 18, 30, tzinfo=UTC)
    )
    provider.frames[("TCS.NS", Timeframe.D1)] = CANDLES[~suspended]
    assert _history(auth_client, "start=2024-06-01&end=2024-06-30")["count"] > 0
    body = _history(auth_client, "start=2024-01-01&end=2024-01-31")
    assert body["count"] == JANUARY_2024 and body["stale"] is False


def test_what_one_provider_was_asked_is_no_claim_about_another():
    # A CSV file holding the last year, synced for ten: its coverage (ten years asked) and its first bar (where
    # "the provider's" history seemed to start) kept every later Yahoo read from asking for the years before.
    import json

    from market.selectors import candles_history
    from market.services import candles_sync

    files = FrameProvider({("TCS.NS", Timeframe.D1): CANDLES[CANDLES.index >= NOW - timedelta(days=365)]})
    files.name = "csv"
    yahoo = FrameProvider({("TCS.NS", Timeframe.D1): CANDLES})
    yahoo.name = "yfinance"
    with time_machine.travel(NOW, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=3650, provider=files)
        body = json.loads(
            candles_history(
                symbol="TCS.NS", timeframe=Timeframe.D1, start=LISTED, order="asc", limit=5000, provider=yahoo
            )
        )
    assert yahoo.calls, "Yahoo was never asked"
    assert body["count"] == len(CANDLES)
    assert body["source"] == "yfinance"  # every bar asked of Yahoo, the file's year included
    # The file's first bar stays a claim about the file only.
    assert CandleSeries.objects.get(symbol="TCS.NS", timeframe="1D").history_source == "csv"
