"""Staff's special sessions (MarketSession): loaded from a CSV with one command, edited in admin, honoured by
every exchange calendar, market status and the synthetic provider's bars. The CSVs are labelled test fixtures
(market/tests/fixtures/sessions/README.md), not announced sessions."""

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.test import Client

from market.models import MarketSession
from market.providers.synthetic import SyntheticProvider
from market.services import sessions_load_csv
from market.sources import calendar_for, sessions_for
from market.timeframes import Timeframe

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sessions"
GOOD, BAD = FIXTURES / "made_up_sessions.csv", FIXTURES / "bad_sessions.csv"
IST = ZoneInfo("Asia/Kolkata")
SUNDAY = date(2026, 11, 8)  # the fixture's evening session, 18:15-19:15 IST


def ist(*args: int) -> datetime:
    return datetime(*args, tzinfo=IST)


def _rows():
    return list(MarketSession.objects.order_by("date").values())


def _load(path: Path = GOOD, *args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("load_sessions", str(path), *args, stdout=out)
    return out.getvalue()


def test_load_command_stores_the_sessions_and_a_second_run_changes_nothing():
    assert _load() == "NSE: 3 sessions added, 0 updated, 0 unchanged\n"
    first = _rows()
    assert [(r["date"], r["kind"], r["open_time"], r["close_time"]) for r in first] == [
        (date(2026, 2, 7), "special", time(9, 15), time(15, 30)),
        (SUNDAY, "special", time(18, 15), time(19, 15)),
        (date(2026, 12, 24), "shortened", time(9, 15), time(13, 0)),
    ]
    assert first[1]["source"] == "test fixture: invented" and first[2]["source"] == ""
    assert _load() == "NSE: 0 sessions added, 0 updated, 3 unchanged\n"
    assert _rows() == first


def test_reloading_an_edited_list_updates_only_the_changed_day(tmp_path):
    _load()
    edited = tmp_path / "edited.csv"
    edited.write_text(
        GOOD.read_text().replace("2026-12-24,shortened,09:15,13:00", "2026-12-24,shortened,09:15,14:00")
    )
    result = sessions_load_csv(path=edited, exchange="nse")
    assert (result.created, result.updated, result.unchanged) == (0, 1, 2)
    assert MarketSession.objects.get(date=date(2026, 12, 24)).close_time == time(14, 0)


def test_bad_rows_are_reported_with_file_and_line_and_nothing_is_stored():
    with pytest.raises(CommandError) as error:
        _load(BAD)
    message = str(error.value)
    assert "bad_sessions.csv line 3: invalid ISO date '2026-13-01'" in message
    assert "bad_sessions.csv line 4: kind must be one of special, shortened, got 'holiday'" in message
    assert "bad_sessions.csv line 5: open_time must be HH:MM" in message
    assert "bad_sessions.csv line 6: the session must open before it closes" in message
    assert "bad_sessions.csv line 7: 2026-11-08 is listed twice" in message
    assert "bad_sessions.csv line 8: expected 6 columns, got 4" in message
    assert "line 2" not in message
    assert MarketSession.objects.count() == 0


def test_a_wrong_header_or_exchange_is_refused(tmp_path):
    headerless = tmp_path / "holidays.csv"
    headerless.write_text("date,description\n2026-11-08,TEST\n")
    with pytest.raises(CommandError, match=r"holidays\.csv line 1: expected the header"):
        _load(headerless)
    with pytest.raises(CommandError, match="Unknown exchange 'MOON'"):
        _load(GOOD, "--exchange", "MOON")


def test_the_nse_calendar_honours_loaded_sessions_and_bse_shares_them():
    assert not calendar_for("NSE").is_trading_day(SUNDAY)  # cached before the load...
    _load()
    nse, bse = calendar_for("NSE"), calendar_for("BSE")  # ...and invalidated by it
    assert nse.session_hours(SUNDAY) == (ist(2026, 11, 8, 18, 15), ist(2026, 11, 8, 19, 15))
    assert bse.session_hours(SUNDAY) == nse.session_hours(SUNDAY)
    assert nse.session_close(date(2026, 12, 24)) == ist(2026, 12, 24, 13, 0)


def test_the_nyse_calendar_honours_its_own_sessions_only():
    _load(GOOD, "--exchange", "NYSE")
    nyse = calendar_for("NYSE")
    ny = ZoneInfo("America/New_York")
    assert nyse.session_hours(SUNDAY) == (
        datetime(2026, 11, 8, 18, 15, tzinfo=ny),
        datetime(2026, 11, 8, 19, 15, tzinfo=ny),
    )
    assert not calendar_for("NSE").is_trading_day(SUNDAY)
    assert calendar_for("NYSE") is nyse  # rebuilt only when the overrides change


def test_market_status_is_open_during_a_special_evening_session_and_closed_after(auth_client):
    _load()
    with time_machine.travel(ist(2026, 11, 8, 18, 30), tick=False):
        during = auth_client.get("/api/market/status").json()
    with time_machine.travel(ist(2026, 11, 8, 19, 20), tick=False):
        after = auth_client.get("/api/market/status").json()
    assert (during["is_open"], during["session"], during["reason"]) == (True, "open", None)
    assert during["special_session"].startswith("TEST FIXTURE evening session")
    assert during["next_close"] == "2026-11-08T19:15:00+05:30"
    assert (after["is_open"], after["reason"], after["next_open"]) == (
        False,
        "after hours",
        "2026-11-09T09:15:00+05:30",
    )


def test_admin_edits_are_seen_at_once(staff_user):
    staff_user.is_superuser = True
    staff_user.save()
    admin = Client()
    admin.force_login(staff_user)
    assert not calendar_for("NSE").is_trading_day(SUNDAY)
    form = {
        "exchange": "NSE",
        "date": "2026-11-08",
        "kind": "special",
        "open_time": "18:15",
        "close_time": "19:15",
        "description": "TEST admin session",
        "source": "",
    }
    assert admin.post("/admin/market/marketsession/add/", form).status_code == 302
    assert calendar_for("NSE").session_hours(SUNDAY)[0] == ist(2026, 11, 8, 18, 15)
    row = MarketSession.objects.get()
    bad = admin.post(f"/admin/market/marketsession/{row.pk}/change/", {**form, "close_time": "18:00"})
    assert bad.status_code == 200  # a session closing before it opens is refused
    assert admin.post(f"/admin/market/marketsession/{row.pk}/delete/", {"post": "yes"}).status_code == 302
    assert sessions_for("NSE") == {} and not calendar_for("NSE").is_trading_day(SUNDAY)


def test_synthetic_15m_bars_of_a_muhurat_session_start_at_its_open():
    _load()
    now = ist(2026, 11, 8, 18, 50).astimezone(UTC)  # half-way through the evening session
    provider = SyntheticProvider(
        symbols=["TCS.NS"], calendar=lambda symbol: calendar_for("NSE"), clock=lambda: now
    )
    candles = provider.fetch_candles("TCS.NS", Timeframe.M15, start=now - timedelta(days=3))
    sunday = [ts.tz_convert(IST) for ts in candles.index if ts.tz_convert(IST).date() == SUNDAY]
    # Closed bars only: 18:15 and 18:30; the 18:45 bar is still forming.
    assert [ts.time() for ts in sunday] == [time(18, 15), time(18, 30)]
    later = SyntheticProvider(
        symbols=["TCS.NS"],
        calendar=lambda symbol: calendar_for("NSE"),
        clock=lambda: now + timedelta(hours=1),
    ).fetch_candles("TCS.NS", Timeframe.M15, start=now - timedelta(days=3))
    sunday = [ts.tz_convert(IST).time() for ts in later.index if ts.tz_convert(IST).date() == SUNDAY]
    assert sunday == [time(18, 15), time(18, 30), time(18, 45), time(19, 0)]
