"""Staff edits in the admin: deleted candles are neither served from a cached body nor trusted as fetched by
coverage; holiday edits reach the calendar of every exchange they touch."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client

from accounts.tests.factories import UserFactory
from market.models import MarketData
from market.tests.factories import FrameProvider, make_candles
from market.timeframes import Timeframe
from tradingdash.events import CandlesDeleted, subscribe, unsubscribe

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 1, 6, 30, tzinfo=UTC)
LISTED = datetime(2026, 1, 1, 18, 30, tzinfo=UTC)
URL = "/api/market/historical/TCS?start=2026-05-01&limit=100"


@pytest.fixture
def provider(monkeypatch):
    provider = FrameProvider({("TCS.NS", Timeframe.D1): make_candles((NOW - LISTED).days, start=LISTED)})
    for where in ("market.sources", "market.selectors", "market.services"):
        monkeypatch.setattr(f"{where}.get_provider", lambda name=None: provider)
    return provider


@pytest.fixture
def admin_client():
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _times(body: dict) -> list[str]:
    return [candle["timestamp"] for candle in body["candles"]]


def test_a_candle_staff_delete_is_fetched_again_by_the_next_read(auth_client, admin_client, provider):
    with time_machine.travel(NOW, tick=False):
        before = auth_client.get(URL).json()
        bad = MarketData.objects.filter(symbol="TCS.NS", timeframe="1D").order_by("timestamp")[10]
        response = admin_client.post(f"/admin/market/marketdata/{bad.pk}/delete/", {"post": "yes"})
        assert response.status_code == 302 and not MarketData.objects.filter(pk=bad.pk).exists()
        after = auth_client.get(URL).json()
    assert MarketData.objects.filter(symbol="TCS.NS", timeframe="1D", timestamp=bad.timestamp).exists()
    assert _times(after) == _times(before)


def test_a_candle_staff_delete_is_no_longer_served(auth_client, admin_client, provider):
    with time_machine.travel(NOW, tick=False):
        before = auth_client.get(URL).json()
        bad = MarketData.objects.filter(symbol="TCS.NS", timeframe="1D").order_by("timestamp")[10]
        frame = provider.frames[("TCS.NS", Timeframe.D1)]
        provider.frames[("TCS.NS", Timeframe.D1)] = frame[
            frame.index != bad.timestamp
        ]  # Yahoo dropped it too
        response = admin_client.post(
            "/admin/market/marketdata/",
            {"action": "delete_selected", "_selected_action": [bad.pk], "post": "yes"},
        )
        assert response.status_code == 302 and not MarketData.objects.filter(pk=bad.pk).exists()
        after = auth_client.get(URL).json()
    assert len(_times(after)) == len(_times(before)) - 1


def test_a_candle_staff_delete_is_announced_after_commit(
    auth_client, admin_client, provider, django_capture_on_commit_callbacks
):
    # What was computed from the deleted bars (a model trained on them) no longer describes the stored ones.
    seen = []
    subscribe(CandlesDeleted, seen.append)
    try:
        with time_machine.travel(NOW, tick=False):
            auth_client.get(URL)
            rows = list(
                MarketData.objects.filter(symbol="TCS.NS", timeframe="1D").order_by("timestamp")[10:12]
            )
            with django_capture_on_commit_callbacks(execute=True):
                admin_client.post(
                    "/admin/market/marketdata/",
                    {"action": "delete_selected", "_selected_action": [r.pk for r in rows], "post": "yes"},
                )
                assert seen == []  # not before the commit
    finally:
        unsubscribe(CandlesDeleted, seen.append)
    assert seen == [
        CandlesDeleted(symbol="TCS.NS", timeframe="1D", deleted=tuple(row.timestamp for row in rows))
    ]


def test_holidays_staff_delete_in_bulk_or_move_to_another_exchange_stop_closing_the_old_one(admin_client):
    from datetime import date

    from market.models import MarketHoliday
    from market.sources import calendar_for

    wrong = [date(2026, 7, 6), date(2026, 7, 7)]  # entered by mistake: NSE trades on both days
    rows = [MarketHoliday.objects.create(exchange="NSE", date=day, description="typo") for day in wrong]
    assert not any(calendar_for("NSE").is_trading_day(day) for day in wrong)  # read, so cached

    response = admin_client.post(
        "/admin/market/marketholiday/",
        {"action": "delete_selected", "_selected_action": [rows[0].pk], "post": "yes"},
    )
    assert response.status_code == 302 and not MarketHoliday.objects.filter(pk=rows[0].pk).exists()
    form = {"date": "2026-07-07", "exchange": "BSE", "description": "BSE only"}
    assert admin_client.post(f"/admin/market/marketholiday/{rows[1].pk}/change/", form).status_code == 302
    assert MarketHoliday.objects.get(pk=rows[1].pk).exchange == "BSE"

    assert all(calendar_for("NSE").is_trading_day(day) for day in wrong)


def test_staff_cannot_add_a_bonus_on_a_day_whose_split_is_stored_which_would_divide_prices_twice(
    admin_client,
):
    from datetime import date

    from market.adjust import Action
    from market.models import CorporateAction
    from market.selectors import corporate_actions
    from market.services import corporate_actions_upsert

    # Yahoo reports a 1:1 bonus issue as a 2:1 split; staff then enter the same bonus by its name.
    split = Action(ex_date=date(2024, 10, 28), kind="split", ratio=2.0)
    corporate_actions_upsert(symbol="RELIANCE.NS", actions=[split], source="yfinance")
    form = {
        "symbol": "RELIANCE.NS",
        "ex_date": "2024-10-28",
        "kind": "bonus",
        "ratio": "2",
        "source": "staff",
        "note": "1:1 bonus",
    }
    response = admin_client.post("/admin/market/corporateaction/add/", form)

    assert response.status_code == 200 and "already" in response.content.decode()
    assert CorporateAction.objects.filter(symbol="RELIANCE.NS").count() == 1
    assert [a.ratio for a in corporate_actions(symbol="RELIANCE.NS", adjust="splits")] == [2.0]


def test_an_action_staff_type_by_its_bare_name_is_stored_under_the_symbol_the_candles_have(admin_client):
    """Typed as people type it (`tcs`), the action was stored under `tcs` and adjusted no candle of TCS.NS,
    saying nothing."""
    from market.models import CorporateAction
    from market.selectors import corporate_actions
    from market.tests.factories import InstrumentFactory

    InstrumentFactory(symbol="TCS.NS")
    form = {"symbol": " tcs ", "ex_date": "2026-06-11", "kind": "split", "ratio": "2"}
    response = admin_client.post("/admin/market/corporateaction/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert [a.ratio for a in corporate_actions(symbol="TCS.NS", adjust="splits")] == [2.0]
    assert CorporateAction.objects.get().source == CorporateAction.STAFF

    # A symbol neither in the catalogue nor stored is refused, not kept where nothing reads it.
    form = {**form, "symbol": "TSC"}
    response = admin_client.post("/admin/market/corporateaction/add/", form)
    assert response.status_code == 200 and "Unknown symbol" in response.content.decode()
    assert CorporateAction.objects.count() == 1


def test_a_provider_action_staff_correct_in_admin_is_theirs_and_no_sync_reverts_it(admin_client):
    """Staff correct a ratio Yahoo got wrong: the row kept `source` yfinance, so the next sync reporting the
    split again put the wrong ratio back."""
    from datetime import date

    from market.adjust import Action
    from market.models import CorporateAction
    from market.services import corporate_actions_upsert
    from market.tests.factories import InstrumentFactory

    InstrumentFactory(symbol="TCS.NS")
    wrong = Action(ex_date=date(2026, 6, 11), kind="split", ratio=20.0)
    corporate_actions_upsert(symbol="TCS.NS", actions=[wrong], source="yfinance")
    row = CorporateAction.objects.get()
    form = {"symbol": "TCS.NS", "ex_date": "2026-06-11", "kind": "split", "ratio": "2", "source": row.source}
    response = admin_client.post(f"/admin/market/corporateaction/{row.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert corporate_actions_upsert(symbol="TCS.NS", actions=[wrong], source="yfinance") == 0
    row.refresh_from_db()
    assert (row.ratio, row.source) == (2.0, CorporateAction.STAFF)


def _daily_bar(day: str, close: float = 100.0) -> MarketData:
    """A daily bar stored as rows were before syncs dropped rows outside the sessions (IST midnight open)."""
    opens = datetime.fromisoformat(f"{day}T00:00:00+05:30").astimezone(UTC)
    return MarketData.objects.create(
        symbol="TCS.NS", timeframe="1D", timestamp=opens, open_price=close, high_price=close,
        low_price=close, close_price=close, volume=0, source="yfinance",
    )  # fmt: skip


def test_staff_delete_the_bars_outside_the_sessions_found_by_the_quality_check(admin_client):
    """Bars stored before the session check (a holiday's row, a weekend's) stayed and were served until staff
    found them in the candle admin: the data-issue action deletes them, each checked against the calendar as it is
    then, so a day a special session was entered for since keeps its bar."""
    from market.models import DataIssue, MarketSession
    from market.services import quality_check
    from market.sources import sessions_invalidate

    for day in ("2026-01-22", "2026-01-23", "2026-01-27", "2026-01-28"):
        _daily_bar(day)
    holiday, sunday = _daily_bar("2026-01-26"), _daily_bar("2026-02-01")
    with time_machine.travel(datetime(2026, 1, 29, 12, tzinfo=UTC), tick=False):
        quality_check(symbol="TCS.NS", timeframe=Timeframe.D1)
        issues = DataIssue.objects.filter(kind="outside_session").order_by("start")
        assert [issue.start for issue in issues] == [holiday.timestamp, sunday.timestamp]
        MarketSession.objects.create(  # staff enter a special session on that Sunday afterwards
            exchange="NSE", date="2026-02-01", open_time="09:15", close_time="15:30", description="Special"
        )
        sessions_invalidate("NSE")
        response = admin_client.post(
            "/admin/market/dataissue/",
            {"action": "delete_bars_outside_sessions", "_selected_action": [i.pk for i in issues]},
            follow=True,
        )
    assert response.status_code == 200
    text = [str(message) for message in response.context["messages"]]
    assert text == [
        "1 bar(s) outside a session deleted, their issue(s) resolved; 1 bar(s) the calendar now puts inside a "
        "session kept (the next quality check resolves their issues)"
    ]
    assert not MarketData.objects.filter(pk=holiday.pk).exists()
    assert MarketData.objects.filter(pk=sunday.pk).exists()
    assert DataIssue.objects.get(start=holiday.timestamp).resolved
    assert not DataIssue.objects.get(start=sunday.timestamp).resolved
    assert MarketData.objects.filter(symbol="TCS.NS").count() == 5


def test_staff_who_may_not_delete_candles_or_change_issues_are_not_offered_the_bars_delete(db):
    from django.contrib.auth.models import Permission

    from market.models import DataIssue

    bar = _daily_bar("2026-01-26")
    issue = DataIssue.objects.create(
        symbol="TCS.NS", timeframe="1D", kind="outside_session", start=bar.timestamp, end=bar.timestamp,
        detected_at=bar.timestamp, checked_at=bar.timestamp,
    )  # fmt: skip
    for codenames in (["view_dataissue", "change_dataissue"], ["view_dataissue", "delete_marketdata"]):
        staff = UserFactory(is_staff=True)
        staff.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
        client = Client()
        client.force_login(staff)
        page = client.get("/admin/market/dataissue/")
        assert page.status_code == 200 and b"delete_bars_outside_sessions" not in page.content, codenames
        client.post(
            "/admin/market/dataissue/",
            {"action": "delete_bars_outside_sessions", "_selected_action": [issue.pk]},
        )
        assert MarketData.objects.filter(pk=bar.pk).exists()
        issue.refresh_from_db()
        assert not issue.resolved
