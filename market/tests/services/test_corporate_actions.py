"""Corporate actions stored from every sync: idempotently, with their source, never over what staff entered."""

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import transaction

from market.adjust import Action
from market.models import CorporateAction, MarketData
from market.providers.csv import CsvProvider
from market.services import candles_sync, corporate_actions_upsert, market_reads_invalidate
from market.tests.providers.fake_yahoo import FakeYahooSession, load_chart
from market.timeframes import Timeframe

pytestmark = [
    pytest.mark.django_db,
    # yfinance 1.7 itself calls pandas APIs that pandas 3.1 deprecates.
    pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning"),
]
IST = ZoneInfo("Asia/Kolkata")
ACTIONS = Path(__file__).resolve().parents[1] / "fixtures" / "csv_actions"
NOW = datetime(2026, 6, 12, 12, 0, tzinfo=UTC)
SPLIT = Action(ex_date=date(2026, 6, 4), kind="split", ratio=2.0)


def stored() -> list[tuple]:
    return list(
        CorporateAction.objects.order_by("ex_date", "kind").values_list(
            "symbol", "ex_date", "kind", "ratio", "amount", "factor", "source"
        )
    )


def sync_csv(**options):
    with time_machine.travel(NOW, tick=False):
        return candles_sync(
            symbol="ACME.NS",
            timeframe=Timeframe.D1,
            days=30,
            provider=CsvProvider(directory=ACTIONS),
            **options,
        )


def test_a_sync_stores_the_csv_actions_with_their_source_and_the_candles_as_traded():
    sync_csv()
    assert stored() == [
        ("ACME.NS", date(2026, 6, 4), "split", 2.0, None, None, "csv"),
        ("ACME.NS", date(2026, 6, 9), "dividend", None, 5.0, None, "csv"),
    ]
    closes = list(MarketData.objects.order_by("timestamp").values_list("close_price", flat=True))
    assert closes[2:4] == [1010.0, 506.0]  # the split day is stored as traded


def test_a_retried_sync_stores_nothing_twice():
    sync_csv()
    before = stored()
    ids = list(CorporateAction.objects.values_list("id", flat=True))
    sync_csv()
    assert stored() == before
    assert list(CorporateAction.objects.values_list("id", flat=True)) == ids
    assert corporate_actions_upsert(symbol="ACME.NS", actions=[SPLIT], source="csv") == 0


def test_a_provider_correction_updates_its_own_row():
    sync_csv()
    corrected = Action(ex_date=date(2026, 6, 9), kind="dividend", amount=5.5)
    assert corporate_actions_upsert(symbol="ACME.NS", actions=[corrected], source="yfinance") == 1
    assert CorporateAction.objects.get(kind="dividend").amount == 5.5
    assert CorporateAction.objects.get(kind="dividend").source == "yfinance"


def test_staff_entries_are_never_overwritten_nor_doubled():
    demerger = CorporateAction.objects.create(
        symbol="ACME.NS", ex_date=date(2026, 6, 9), kind="adjustment", factor=0.95, note="demerger"
    )
    CorporateAction.objects.create(symbol="ACME.NS", ex_date=date(2026, 6, 9), kind="dividend", amount=4.0)
    # Staff entered the split day's event as a bonus issue: the provider's "split" of that day is the same event.
    CorporateAction.objects.create(symbol="ACME.NS", ex_date=date(2026, 6, 4), kind="bonus", ratio=2.0)
    sync_csv()
    assert stored() == [
        ("ACME.NS", date(2026, 6, 4), "bonus", 2.0, None, None, "staff"),
        ("ACME.NS", date(2026, 6, 9), "adjustment", None, None, 0.95, "staff"),
        ("ACME.NS", date(2026, 6, 9), "dividend", None, 4.0, None, "staff"),
    ]
    demerger.refresh_from_db()
    assert demerger.note == "demerger"


def test_a_sync_from_a_recorded_yahoo_split(yfinance_module, yfinance_cache_dir, nse_calendar):
    from yfinance.data import YfData

    YfData.cache_get.cache_clear()
    now = datetime(2024, 11, 1, 12, 0, tzinfo=UTC)
    provider = yfinance_module.YFinanceProvider(
        session=FakeYahooSession({("RELIANCE.NS", "1d"): "reliance_ns_1d_2024-10_split.json"}),
        cache_dir=yfinance_cache_dir,
        calendar=nse_calendar,
        clock=lambda: now,
        limiter=yfinance_module.SlidingWindowLimiter(sleep=lambda seconds: None),
    )
    with time_machine.travel(now, tick=False):
        first = candles_sync(symbol="RELIANCE.NS", timeframe=Timeframe.D1, days=14, provider=provider)
        again = candles_sync(symbol="RELIANCE.NS", timeframe=Timeframe.D1, days=14, provider=provider)

    assert first.inserted == 9 and again.inserted == 0
    assert stored() == [("RELIANCE.NS", date(2024, 10, 28), "split", 2.0, None, None, "yfinance")]
    yahoo = load_chart("reliance_ns_1d_2024-10_split.json")["chart"]["result"][0]["indicators"]["quote"][0]
    closes = list(MarketData.objects.order_by("timestamp").values_list("close_price", flat=True))
    assert closes == pytest.approx([2 * c for c in yahoo["close"][:5]] + yahoo["close"][5:])  # as traded


class TestReadPerVersion:
    """market.selectors.corporate_actions keeps what it read per symbol version in the process: a read after a
    change that bumps the version sees the change; nothing is kept while Redis (the shared version) is down."""

    def test_a_stored_action_is_seen_by_the_next_read(self):
        from market.selectors import corporate_actions

        assert corporate_actions(symbol="ACME.NS", adjust="splits") == []
        # What a sync does (market.services._store_window), and staff's edits in the admin.
        with transaction.atomic():
            if corporate_actions_upsert(symbol="ACME.NS", actions=[SPLIT], source="csv"):
                market_reads_invalidate(symbol="ACME.NS")
        assert [a.ratio for a in corporate_actions(symbol="ACME.NS", adjust="splits")] == [2.0]

    def test_read_once_per_version(self, django_assert_num_queries):
        from market.selectors import corporate_actions

        corporate_actions_upsert(symbol="ACME.NS", actions=[SPLIT], source="csv")
        with django_assert_num_queries(1):
            corporate_actions(symbol="ACME.NS", adjust="splits")
            corporate_actions(symbol="ACME.NS", adjust="splits")

    def test_not_kept_while_redis_is_down(self, dead_cache, django_assert_num_queries):
        from market.selectors import corporate_actions

        with django_assert_num_queries(2):
            corporate_actions(symbol="ACME.NS", adjust="splits")
            corporate_actions(symbol="ACME.NS", adjust="splits")
