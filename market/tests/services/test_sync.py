import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction

from market.caching import market_version
from market.models import CoverageInterval, MarketData
from market.providers.errors import ProviderUnavailable
from market.services import candles_sync, candles_upsert, holidays_load_csv
from market.sources import get_calendar, get_provider
from market.tests.factories import FrameProvider, MarketDataFactory, make_candles
from market.timeframes import Timeframe
from tradingdash.events import CandlesStored, subscribe, unsubscribe

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_sync_twice_stores_each_candle_once():
    provider = get_provider("synthetic")
    with time_machine.travel(NOW, tick=False):
        first = candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=400, provider=provider)
        second = candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, provider=provider)
    assert first.inserted > 250 and first.updated == 0
    assert second.inserted == 0
    assert MarketData.objects.filter(symbol="TCS.NS").count() == first.inserted
    assert set(MarketData.objects.values_list("source", flat=True)) == {"synthetic"}


def test_incremental_sync_fetches_from_last_candle_with_overlap():
    candles = make_candles(30)
    provider = FrameProvider({("TCS.NS", Timeframe.D1): candles})
    candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=candles.iloc[:20], source="frame")
    with time_machine.travel(candles.index[-1].to_pydatetime() + timedelta(days=1), tick=False):
        result = candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, provider=provider)
    _, _, start, _ = provider.calls[-1]
    assert start == candles.index[19].to_pydatetime() - timedelta(days=3)
    assert result.inserted == 10
    # The overlap (3 days back, inclusive) fetches the last stored bars again; they come back as stored.
    assert (result.updated, result.unchanged) == (0, 4)
    assert MarketData.objects.count() == 30


def test_overlap_repairs_a_bar_that_was_still_forming():
    candles = make_candles(10)
    forming = candles.copy()
    forming.iloc[-1, forming.columns.get_loc("close")] = forming["open"].iloc[-1]  # mid-session value
    forming.iloc[-1, forming.columns.get_loc("high")] = forming[["open", "high"]].iloc[-1].max()
    candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=forming, source="frame")
    with time_machine.travel(candles.index[-1].to_pydatetime() + timedelta(days=1), tick=False):
        candles_sync(
            symbol="TCS.NS",
            timeframe=Timeframe.D1,
            provider=FrameProvider({("TCS.NS", Timeframe.D1): candles}),
        )
    stored = MarketData.objects.get(timestamp=candles.index[-1].to_pydatetime())
    assert stored.close_price == pytest.approx(candles["close"].iloc[-1])


def test_invalid_ohlcv_rows_are_rejected_not_stored():
    candles = make_candles(5)
    candles.iloc[1, candles.columns.get_loc("high")] = candles["low"].iloc[1] / 2  # high below low
    candles.iloc[3, candles.columns.get_loc("volume")] = -1
    result = candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=candles, source="frame")
    assert (result.inserted, result.rejected) == (3, 2)
    assert MarketData.objects.count() == 3


def test_database_refuses_an_invalid_candle_written_around_the_service():
    with pytest.raises(IntegrityError), transaction.atomic():
        MarketDataFactory(high_price=90.0)  # below open and close


def test_upsert_updates_existing_rows_in_place():
    candles = make_candles(5)
    candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=candles, source="frame")
    changed = candles.copy()
    changed["volume"] = 7
    result = candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=changed, source="csv")
    assert (result.inserted, result.updated) == (0, 5)
    assert set(MarketData.objects.values_list("volume", "source")) == {(7, "csv")}


def test_days_beyond_intraday_lookback_is_refused():
    with pytest.raises(ValueError, match="last 60 days"):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.M5, days=90, provider=get_provider("synthetic"))


def test_provider_failure_leaves_stored_data_untouched():
    candles = make_candles(5)
    candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=candles, source="frame")
    with pytest.raises(ProviderUnavailable):
        candles_sync(
            symbol="TCS.NS", timeframe=Timeframe.D1, provider=FrameProvider(fail=ProviderUnavailable())
        )
    assert MarketData.objects.count() == 5
    assert not CoverageInterval.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_syncs_of_one_symbol_never_duplicate():
    candles = make_candles(300)
    provider = FrameProvider({("INFY.NS", Timeframe.D1): candles})
    errors: list[Exception] = []
    barrier = threading.Barrier(4)

    def run():
        try:
            barrier.wait()
            with time_machine.travel(candles.index[-1].to_pydatetime() + timedelta(days=1), tick=False):
                candles_sync(symbol="INFY.NS", timeframe=Timeframe.D1, days=400, provider=provider)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert MarketData.objects.filter(symbol="INFY.NS").count() == 300


def test_load_holidays_from_csv_is_idempotent_and_updates_calendar(tmp_path):
    path = tmp_path / "nse_2027.csv"
    path.write_text("date,description\n2027-01-26,Republic Day\n")
    assert holidays_load_csv(path=path) == (1, 0)
    assert holidays_load_csv(path=path) == (0, 1)
    assert not get_calendar().is_trading_day(datetime(2027, 1, 26).date())


def test_seeded_2026_holidays_are_the_published_list():
    calendar = get_calendar()
    assert not calendar.is_trading_day(datetime(2026, 11, 24).date())  # Guru Nanak Jayanti
    assert not calendar.is_trading_day(datetime(2026, 1, 15).date())  # added later by the exchange
    assert calendar.is_trading_day(datetime(2026, 11, 23).date())


@pytest.mark.parametrize("write", ["_upsert_copy", "_upsert_orm"])
def test_both_write_paths_count_exactly_and_upsert(write):
    """PostgreSQL uses COPY + ON CONFLICT, other databases bulk_create: same results, exact counts."""
    from market import services

    candles = make_candles(50)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    upsert = getattr(services, write)
    stamps = list(candles.index.to_pydatetime())
    inserted, updated, written = upsert(
        symbol="TCS.NS", timeframe=Timeframe.D1, candles=candles.iloc[:30], source="a", now=now
    )
    assert (inserted, updated, sorted(written)) == (30, 0, stamps[:30])
    inserted, updated, written = upsert(
        symbol="TCS.NS", timeframe=Timeframe.D1, candles=candles, source="b", now=now
    )
    assert (inserted, updated, sorted(written)) == (20, 30, stamps)
    # Sent again as stored: nothing written, and no bar said to be.
    assert upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=candles, source="b", now=now) == (0, 0, [])
    assert MarketData.objects.count() == 50
    assert set(MarketData.objects.values_list("source", flat=True)) == {"b"}


def test_upsert_twice_in_one_transaction_reuses_the_staging_table():
    candles = make_candles(10)
    with transaction.atomic():
        first = candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=candles, source="frame")
        second = candles_upsert(symbol="INFY.NS", timeframe=Timeframe.D1, candles=candles, source="frame")
    assert (first.inserted, second.inserted) == (10, 10)


# A re-sync that gets back the bars already stored changes nothing: they are neither counted updated nor
# rewritten, and nobody is told the data changed (the symbol's version, CandlesStored).


@pytest.mark.parametrize("vendor", ["postgresql", "sqlite"])
def test_upserting_the_same_candles_again_changes_nothing(monkeypatch, vendor):
    monkeypatch.setattr(connection, "vendor", vendor)  # the COPY merge, or the ORM's bulk upsert
    candles = make_candles(5)
    candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=candles, source="frame")
    written = dict(MarketData.objects.values_list("timestamp", "updated_at"))
    again = candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=candles, source="frame")
    assert (again.inserted, again.updated) == (0, 0)
    assert again.unchanged == 5
    assert dict(MarketData.objects.values_list("timestamp", "updated_at")) == written


@pytest.mark.parametrize("vendor", ["postgresql", "sqlite"])
def test_only_the_bars_whose_values_changed_are_updated(monkeypatch, vendor):
    monkeypatch.setattr(connection, "vendor", vendor)
    candles = make_candles(5)
    candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=candles, source="frame")
    changed = candles.copy()
    changed.iloc[3, changed.columns.get_loc("volume")] += 1
    result = candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=changed, source="frame")
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 4)
    stored = MarketData.objects.get(timestamp=candles.index[3].to_pydatetime())
    assert stored.volume == changed["volume"].iloc[3]


def test_a_bar_turning_final_with_the_same_values_is_updated():
    daily = make_candles(2, start=datetime(2026, 6, 1, 18, 30, tzinfo=UTC))  # Tuesday, Wednesday IST
    with time_machine.travel(datetime(2026, 6, 3, 9, 0, tzinfo=UTC), tick=False):  # Wednesday 14:30 IST
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=daily, source="frame")
    with time_machine.travel(datetime(2026, 6, 3, 11, 0, tzinfo=UTC), tick=False):  # after the close
        result = candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=daily, source="frame")
    assert (result.updated, result.unchanged) == (1, 1)
    assert list(MarketData.objects.order_by("timestamp").values_list("final", flat=True)) == [True, True]


def test_a_resync_of_unchanged_bars_neither_invalidates_reads_nor_announces(
    django_capture_on_commit_callbacks,
):
    candles = make_candles(10)
    provider = FrameProvider({("TCS.NS", Timeframe.D1): candles})
    seen = []
    subscribe(CandlesStored, seen.append)
    try:
        with time_machine.travel(candles.index[-1].to_pydatetime() + timedelta(days=1), tick=False):
            candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=30, provider=provider)
            version = market_version("TCS.NS")
            seen.clear()
            with django_capture_on_commit_callbacks(execute=True):
                again = candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, provider=provider)
            assert (again.inserted, again.updated, again.unchanged) == (0, 0, 4)
            assert again.message is None  # the provider had the bars; they were already stored
            assert market_version("TCS.NS") == version
            assert seen == []

            provider.frames[("TCS.NS", Timeframe.D1)] = candles.assign(
                close=candles["close"].where(candles.index != candles.index[-1], candles["open"])
            )
            with django_capture_on_commit_callbacks(execute=True):
                changed = candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, provider=provider)
            assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 3)
            assert market_version("TCS.NS") != version
            assert [(event.inserted, event.updated) for event in seen] == [(0, 1)]
            # Only the bar rewritten is named, not the ones sent again as they were.
            assert [event.written for event in seen] == [(candles.index[-1].to_pydatetime(),)]
    finally:
        unsubscribe(CandlesStored, seen.append)
