"""Quality check and repair on stored candles: findings stored, resolved when gone, gaps re-fetched, what the
provider cannot supply marked; the staff API and the command."""

from datetime import UTC, datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command
from django.db.models import F

from market.models import CorporateAction, DataIssue, MarketData
from market.providers.base import empty_candles
from market.providers.errors import SymbolNotFound
from market.services import _all_candles, candles_sync, quality_check, quality_repair
from market.sources import get_provider
from market.tests.factories import FrameProvider
from market.timeframes import Timeframe

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 27, 14, 30, tzinfo=UTC)  # Friday 20:00 IST, after the close


@pytest.fixture
def stored_with_a_hole():
    provider = get_provider("synthetic")
    with time_machine.travel(NOW, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=120, provider=provider)
    hole = MarketData.objects.filter(symbol="TCS.NS", timeframe="1D").order_by("timestamp")[30:33]
    removed = [row.timestamp for row in hole]
    MarketData.objects.filter(timestamp__in=removed, symbol="TCS.NS").delete()
    return removed


def test_check_records_the_gap_once_and_resolves_it_when_filled(stored_with_a_hole):
    first = quality_check(symbol="TCS.NS", timeframe=Timeframe.D1, now=NOW)
    again = quality_check(symbol="TCS.NS", timeframe=Timeframe.D1, now=NOW)
    issue = DataIssue.objects.get(symbol="TCS.NS", kind="missing")
    assert (first.new, again.new) == (1, 0)
    assert (issue.start, issue.end, issue.details["bars"]) == (
        stored_with_a_hole[0],
        stored_with_a_hole[-1],
        3,
    )
    result = quality_repair(
        symbol="TCS.NS", timeframe=Timeframe.D1, provider=get_provider("synthetic"), now=NOW
    )
    assert result.refetched == 3 and result.unavailable == 0
    issue.refresh_from_db()
    assert issue.resolved and issue.resolved_at == NOW
    assert MarketData.objects.filter(timestamp__in=stored_with_a_hole, symbol="TCS.NS").count() == 3


def test_a_gap_the_provider_cannot_fill_is_marked_unavailable_and_not_asked_again(stored_with_a_hole):
    nothing = FrameProvider({("TCS.NS", Timeframe.D1): empty_candles()})
    result = quality_repair(symbol="TCS.NS", timeframe=Timeframe.D1, provider=nothing, now=NOW)
    assert result.refetched == 0 and result.unavailable == 1
    assert DataIssue.objects.get(kind="missing").unavailable
    calls = len(nothing.calls)
    quality_repair(symbol="TCS.NS", timeframe=Timeframe.D1, provider=nothing, now=NOW)
    assert len(nothing.calls) == calls


def test_quality_api_is_for_staff(stored_with_a_hole, auth_client, staff_client):
    quality_check(symbol="TCS.NS", timeframe=Timeframe.D1, now=NOW)
    assert auth_client.get("/api/market/quality/TCS").status_code == 403
    body = staff_client.get("/api/market/quality/TCS?timeframe=1D").json()
    assert body["open"] == {"missing": 1}
    assert body["issues"][0]["kind"] == "missing" and body["issues"][0]["details"] == {"bars": 3}
    assert staff_client.get("/api/market/quality/TCS?timeframe=2D").status_code == 400


def test_command_checks_and_repairs(stored_with_a_hole):
    out = StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command(
            "check_data_quality", "TCS", "--repair", "--provider", "synthetic", stdout=out, verbosity=0
        )
    assert "3 bars re-fetched" in out.getvalue()
    assert not DataIssue.objects.filter(resolved=False, kind="missing").exists()


def test_a_jump_on_a_stored_split_day_is_no_finding():
    with time_machine.travel(NOW, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=120, provider=get_provider("synthetic"))
    rows = MarketData.objects.filter(symbol="TCS.NS", timeframe="1D").order_by("timestamp")
    split_bar = rows[60].timestamp
    MarketData.objects.filter(symbol="TCS.NS", timestamp__gte=split_bar).update(
        open_price=F("open_price") / 2,
        high_price=F("high_price") / 2,
        low_price=F("low_price") / 2,
        close_price=F("close_price") / 2,
    )  # a 1:2 split, stored as traded
    quality_check(symbol="TCS.NS", timeframe=Timeframe.D1, now=NOW)
    assert DataIssue.objects.get(kind="jump", resolved=False).start == split_bar

    ex_date = split_bar.astimezone(ZoneInfo("Asia/Kolkata")).date()
    CorporateAction.objects.create(
        symbol="TCS.NS", ex_date=ex_date, kind="split", ratio=2.0, source="synthetic"
    )
    quality_check(symbol="TCS.NS", timeframe=Timeframe.D1, now=NOW)
    assert not DataIssue.objects.filter(kind="jump", resolved=False).exists()


class _NoDataBefore(FrameProvider):
    """Yahoo's chart answer for an old window it has nothing for ("No data found, symbol may be delisted")
    is SymbolNotFound; later windows are served from the frame."""

    def __init__(self, frame, *, before):
        super().__init__({("TCS.NS", Timeframe.D1): frame})
        self.before = before

    def fetch_candles(self, symbol, timeframe, *, start=None, end=None):
        if start is not None and start < self.before:
            self.calls.append((symbol, timeframe, start, end))
            raise SymbolNotFound(symbol, "Yahoo Finance has no data for 'TCS.NS': No data found")
        return super().fetch_candles(symbol, timeframe, start=start, end=end)


def test_a_gap_the_provider_says_it_has_no_data_for_does_not_stop_the_repair_of_the_others():
    with time_machine.travel(NOW, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=120, provider=get_provider("synthetic"))
    rows = list(MarketData.objects.filter(symbol="TCS.NS", timeframe="1D").order_by("timestamp"))
    frame = _all_candles(symbol="TCS.NS", timeframe=Timeframe.D1)
    old, recent = [rows[10].timestamp], [rows[60].timestamp, rows[61].timestamp]
    MarketData.objects.filter(symbol="TCS.NS", timestamp__in=old + recent).delete()
    provider = _NoDataBefore(frame, before=rows[30].timestamp)

    result = quality_repair(symbol="TCS.NS", timeframe=Timeframe.D1, provider=provider, now=NOW)

    assert result.refetched == 2 and result.unavailable == 1
    assert MarketData.objects.filter(symbol="TCS.NS", timestamp__in=recent).count() == 2
    still_missing = DataIssue.objects.get(kind="missing", resolved=False)
    assert (still_missing.start, still_missing.unavailable) == (old[0], True)


def test_an_intraday_gap_reaching_back_past_the_lookback_is_repaired_from_where_the_provider_serves():
    provider = get_provider("synthetic")
    with time_machine.travel(NOW, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.M15, days=59, provider=provider)
    hole = MarketData.objects.filter(
        symbol="TCS.NS",
        timeframe="15m",
        timestamp__gte=datetime(2026, 10, 5, tzinfo=UTC),  # Monday to Wednesday
        timestamp__lt=datetime(2026, 10, 8, tzinfo=UTC),
    )
    removed = list(hole.values_list("timestamp", flat=True))
    hole.delete()
    later = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)  # the provider's 60 days now begin inside the hole
    floor = later - Timeframe.M15.spec.max_lookback
    with time_machine.travel(later, tick=False):
        result = quality_repair(symbol="TCS.NS", timeframe=Timeframe.M15, provider=provider, now=later)

    assert result.refetched > 0
    back = MarketData.objects.filter(symbol="TCS.NS", timeframe="15m", timestamp__in=removed)
    assert set(back.values_list("timestamp", flat=True)) == {ts for ts in removed if ts > floor}
    assert {ts for ts in removed if ts < floor}, "the hole must begin beyond the lookback"


def test_a_missing_run_that_grew_since_it_was_marked_unavailable_is_asked_for_again():
    synthetic = get_provider("synthetic")
    with time_machine.travel(NOW, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=60, provider=synthetic)
    tuesday = datetime(2026, 12, 1, 14, 30, tzinfo=UTC)  # Monday's and Tuesday's bars are due, none stored
    nothing = FrameProvider({("TCS.NS", Timeframe.D1): empty_candles()})
    with time_machine.travel(tuesday, tick=False):
        quality_repair(symbol="TCS.NS", timeframe=Timeframe.D1, provider=nothing, now=tuesday)
    assert DataIssue.objects.get(kind="missing", resolved=False).unavailable

    friday = datetime(2026, 12, 4, 14, 30, tzinfo=UTC)  # the run now reaches Friday: three days never asked
    with time_machine.travel(friday, tick=False):
        result = quality_repair(symbol="TCS.NS", timeframe=Timeframe.D1, provider=synthetic, now=friday)
    assert result.refetched == 5 and result.unavailable == 0
    assert not DataIssue.objects.filter(kind="missing", resolved=False).exists()


def test_quality_report_times_read_in_the_clock_of_the_symbols_exchange(staff_client):
    """Issue 10: an S&P 500 finding is dated in New York (-04:00 in June), not in the server's TIME_ZONE."""
    session = datetime(2026, 6, 1, 13, 30, tzinfo=UTC)  # Monday 09:30 in New York
    DataIssue.objects.create(
        symbol="^GSPC",
        timeframe="1D",
        kind="missing",
        start=session,
        end=session + timedelta(days=1),
        details={"bars": 1},
        detected_at=session,
        checked_at=session,
    )
    body = staff_client.get("/api/market/quality/%5EGSPC?timeframe=1D").json()
    assert body["checked_at"] == "2026-06-01T09:30:00-04:00"
    issue = body["issues"][0]
    assert (issue["start"], issue["detected_at"]) == (
        "2026-06-01T09:30:00-04:00",
        "2026-06-01T09:30:00-04:00",
    )


def test_intraday_bars_outside_the_session_hours_are_deleted_and_those_inside_kept():
    from market.services import candles_outside_sessions_delete

    def bar(local: str) -> MarketData:
        at = datetime.fromisoformat(local).astimezone(UTC)
        row = MarketData.objects.create(
            symbol="TCS.NS", timeframe="5m", timestamp=at, open_price=10, high_price=10, low_price=10,
            close_price=10, volume=5, source="csv",
        )  # fmt: skip
        DataIssue.objects.create(
            symbol="TCS.NS", timeframe="5m", kind="outside_session", start=at, end=at, detected_at=at,
            checked_at=at,
        )  # fmt: skip
        return row

    evening, morning = bar("2026-11-26T20:00:00+05:30"), bar("2026-11-26T10:00:00+05:30")
    weekly = DataIssue.objects.create(
        symbol="TCS.NS", timeframe="1W", kind="outside_session", start=NOW, end=NOW, detected_at=NOW,
        checked_at=NOW,
    )  # fmt: skip
    result = candles_outside_sessions_delete(issues=DataIssue.objects.all())
    assert (result.deleted, result.in_session, result.skipped) == (1, 1, 1)
    assert not MarketData.objects.filter(pk=evening.pk).exists()
    assert MarketData.objects.filter(pk=morning.pk).exists()
    assert set(DataIssue.objects.filter(resolved=True).values_list("start", flat=True)) == {evening.timestamp}
    assert not DataIssue.objects.get(pk=weekly.pk).resolved


def test_bars_deleted_outside_the_sessions_are_not_asked_for_again():
    """Each deleted bar's range cut out of the coverage was one more provider request of the next read (five
    evening bars: five requests), for bars the provider leaves out anyway."""
    from market.services import candles_ensure, candles_outside_sessions_delete

    provider = get_provider("synthetic")
    with time_machine.travel(NOW, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.M5, days=10, provider=provider)
        for day in (18, 19, 20, 24, 25):  # 20:00 IST, stored before syncs dropped bars outside the sessions
            MarketData.objects.create(
                symbol="TCS.NS", timeframe="5m", timestamp=datetime(2026, 11, day, 14, 30, tzinfo=UTC),
                open_price=1, high_price=1, low_price=1, close_price=1, volume=1, source=provider.name,
            )  # fmt: skip
        quality_check(symbol="TCS.NS", timeframe=Timeframe.M5, now=NOW)
        issues = DataIssue.objects.filter(kind="outside_session")
        assert candles_outside_sessions_delete(issues=issues).deleted == 5
        counting = FrameProvider({("TCS.NS", Timeframe.M5): empty_candles()})
        counting.name = provider.name  # the coverage is the synthetic provider's
        candles_ensure(
            symbol="TCS.NS",
            timeframe=Timeframe.M5,
            start=NOW - timedelta(days=10),
            end=NOW,
            provider=counting,
        )
    assert counting.calls == []
