"""The migration to coverage intervals claims only what is stored."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("market", "0002_seed_catalogue_and_holidays")]
AFTER = [("market", "0003_coverage_intervals")]
T0 = datetime(2018, 1, 1, 18, 30, tzinfo=UTC)


def _candle(MarketData, stamp, symbol="TCS.NS", timeframe="1D"):
    return MarketData(
        symbol=symbol,
        timeframe=timeframe,
        timestamp=stamp,
        open_price=100,
        high_price=101,
        low_price=99,
        close_price=100,
        volume=1,
        source="yfinance",
    )


@pytest.mark.django_db(transaction=True)
def test_old_spans_become_intervals_of_the_stored_candles_split_at_long_gaps():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    MarketData = old.get_model("market", "MarketData")
    CandleCoverage = old.get_model("market", "CandleCoverage")
    january_2018 = [T0 + timedelta(days=i) for i in range(20)]
    january_2024 = [datetime(2024, 1, 1, 18, 30, tzinfo=UTC) + timedelta(days=i) for i in range(10)]
    MarketData.objects.bulk_create(_candle(MarketData, stamp) for stamp in january_2018 + january_2024)
    synced = datetime(2024, 1, 20, tzinfo=UTC)
    for symbol in ("TCS.NS", "EMPTY.NS"):  # EMPTY.NS: a span claimed while nothing was stored
        CandleCoverage.objects.create(
            symbol=symbol,
            timeframe="1D",
            covered_from=datetime(2017, 12, 1, tzinfo=UTC),
            covered_to=synced,
            last_synced_at=synced,
            source="yfinance",
        )

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    CoverageInterval = new.get_model("market", "CoverageInterval")
    intervals = list(
        CoverageInterval.objects.order_by("series__symbol", "covered_from").values_list(
            "series__symbol", "covered_from", "covered_to", "last_synced_at"
        )
    )
    assert intervals == [
        ("TCS.NS", january_2018[0], january_2018[-1] + timedelta(days=1), synced),
        ("TCS.NS", january_2024[0], january_2024[-1] + timedelta(days=1), synced),
    ]
    assert new.get_model("market", "CandleSeries").objects.filter(symbol="EMPTY.NS").exists()

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_a_stored_history_start_stays_a_claim_about_the_provider_that_found_it():
    before, after = [("market", "0012_sync_runs")], [("market", "0013_coverage_per_provider")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    CandleSeries = old.get_model("market", "CandleSeries")
    CoverageInterval = old.get_model("market", "CoverageInterval")
    found = CandleSeries.objects.create(symbol="TCS.NS", timeframe="1D", history_starts_at=T0)
    for start, source in ((T0, "csv"), (T0 + timedelta(days=400), "yfinance")):
        CoverageInterval.objects.create(
            series=found,
            covered_from=start,
            covered_to=start + timedelta(days=100),
            last_synced_at=start + timedelta(days=100),
            source=source,
        )
    CandleSeries.objects.create(symbol="BARE.NS", timeframe="1D", history_starts_at=T0)  # no interval
    CandleSeries.objects.create(symbol="NONE.NS", timeframe="1D")

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    new = executor.loader.project_state(after).apps
    claims = {
        symbol: (starts, source)
        for symbol, starts, source in new.get_model("market", "CandleSeries").objects.values_list(
            "symbol", "history_starts_at", "history_source"
        )
    }
    assert claims == {"TCS.NS": (T0, "csv"), "BARE.NS": (None, ""), "NONE.NS": (None, "")}

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
