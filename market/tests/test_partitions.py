"""The candle table on PostgreSQL: partitioned by month, partitions created ahead, and everything that used the
plain table (upserts, the unique constraint, the admin, ids) working across partitions."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.apps import apps
from django.core.management import call_command
from django.db import IntegrityError, connection, models, transaction
from django.db.migrations.executor import MigrationExecutor
from django.forms import modelform_factory
from django.test import Client

from accounts.tests.factories import UserFactory
from market.models import MarketData
from market.partitions import (
    COARSE,
    DEFAULT_PARTITION,
    add_months,
    candle_partitions,
    candle_partitions_ensure,
    month_start,
    partition_name,
)
from market.services import candles_upsert
from market.tasks import ensure_candle_partitions
from market.tests.factories import MarketDataFactory, make_candles
from market.timeframes import Timeframe
from tradingdash.schedule import BEAT_SCHEDULE

pytestmark = pytest.mark.django_db


def _partition_of(candle_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM market_marketdata WHERE id = %s", [candle_id])
        return cursor.fetchone()[0]


def _rows_in(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 test-built name
        return cursor.fetchone()[0]


def _partitions() -> dict[str, str]:
    return dict(candle_partitions())


def test_candle_table_is_partitioned_by_timeframe_then_minute_bars_by_month_with_keys_that_include_both():
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.relname, p.partstrat, a.attname FROM pg_partitioned_table p
               JOIN pg_class c ON c.oid = p.partrelid
               JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
               WHERE c.relname LIKE 'market_marketdata%%' ORDER BY c.relname"""
        )
        assert cursor.fetchall() == [
            ("market_marketdata", "l", "timeframe"),
            ("market_marketdata_intraday", "r", "timestamp"),
        ]
        cursor.execute(
            """SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint
               WHERE conrelid = 'market_marketdata'::regclass AND contype IN ('p', 'u') ORDER BY contype"""
        )
        assert cursor.fetchall() == [
            ("market_marketdata_pkey", "p", 'PRIMARY KEY (id, timeframe, "timestamp")'),
            ("market_candle_unique", "u", 'UNIQUE (symbol, timeframe, "timestamp")'),
        ]
    partitions = _partitions()
    this_month = month_start(datetime.now(UTC))
    for ahead in range(4):  # the migration made this month and the next three
        month = add_months(this_month, ahead)
        assert partitions[partition_name(month)] == (
            f"FOR VALUES FROM ('{month:%Y-%m-%d} 00:00:00+00') TO ('{add_months(month, 1):%Y-%m-%d} 00:00:00+00')"
        )
    assert partitions[DEFAULT_PARTITION] == "DEFAULT"
    assert partitions[COARSE] == "DEFAULT"


def _tables_read(sql: str, params: list) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        (plan,) = cursor.fetchone()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    found = set()

    def walk(node):
        if "Relation Name" in node:
            found.add(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


def test_a_daily_read_opens_the_coarse_partition_and_a_minute_day_its_month_only():
    for months_back in range(0, 120, 7):
        MarketDataFactory(timestamp=datetime.now(UTC) - timedelta(days=30 * months_back))
    MarketDataFactory(timeframe="1m", timestamp=datetime.now(UTC))
    daily = """SELECT * FROM market_marketdata WHERE symbol = %s AND timeframe = %s
               ORDER BY "timestamp" DESC LIMIT 2500"""
    assert _tables_read(daily, ["TCS.NS", "1D"]) == {COARSE}
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    one_day = """SELECT * FROM market_marketdata WHERE symbol = %s AND timeframe = %s
                 AND "timestamp" >= %s AND "timestamp" < %s ORDER BY "timestamp" """
    assert _tables_read(one_day, ["TCS.NS", "1m", day, day + timedelta(hours=12)]) == {
        partition_name(month_start(day))
    }


def test_django_keeps_id_as_primary_key_and_every_unique_constraint_has_the_partition_columns():
    assert MarketData._meta.pk.name == "id" and not MarketData._meta.is_composite_pk
    unique = [c for c in MarketData._meta.constraints if isinstance(c, models.UniqueConstraint)]
    assert unique and all({"timeframe", "timestamp"} <= set(c.fields) for c in unique)
    assert not MarketData._meta.unique_together
    assert not [f for f in MarketData._meta.get_fields() if f.concrete and f.unique and not f.primary_key]


def test_no_model_has_a_foreign_key_to_candles():
    # A foreign key needs a unique key on id alone, which a partitioned table cannot have.
    pointing = [
        f"{model.__name__}.{field.name}"
        for model in apps.get_models()
        for field in model._meta.get_fields()
        if field.is_relation and field.concrete and field.related_model is MarketData
    ]
    assert pointing == []


def test_task_creates_the_coming_months_and_a_candle_there_lands_in_its_partition():
    later = datetime(2031, 7, 15, 12, 0, tzinfo=UTC)  # far beyond what the migration created
    assert "market_marketdata_y2031m10" not in _partitions()
    with time_machine.travel(later, tick=False):
        result = ensure_candle_partitions()
    assert result["created"] == [f"market_marketdata_y2031m{m:02d}" for m in (7, 8, 9, 10)]
    assert result["moved"] == 0

    candles = make_candles(3, start=datetime(2031, 10, 6, 3, 45, tzinfo=UTC), step=timedelta(minutes=1))
    stored = candles_upsert(symbol="TCS.NS", timeframe=Timeframe.M1, candles=candles, source="test")
    assert stored.inserted == 3
    ids = MarketData.objects.filter(symbol="TCS.NS", timeframe="1m").values_list("id", flat=True)
    assert {_partition_of(i) for i in ids} == {"market_marketdata_y2031m10"}
    assert _rows_in(DEFAULT_PARTITION) == 0

    with time_machine.travel(later, tick=False):
        assert ensure_candle_partitions() == {"created": [], "moved": 0, "partitioned": True}


def test_rows_of_a_month_without_partition_wait_in_the_default_and_move_out_keeping_their_id():
    old = MarketDataFactory(timeframe="1m", timestamp=datetime(2011, 3, 4, 10, 0, tzinfo=UTC))
    assert _partition_of(old.pk) == DEFAULT_PARTITION

    result = candle_partitions_ensure()
    assert "market_marketdata_y2011m03" in result.created and result.moved == 1
    assert _partition_of(old.pk) == "market_marketdata_y2011m03"
    assert MarketData.objects.get(pk=old.pk).close_price == old.close_price
    assert _rows_in(DEFAULT_PARTITION) == 0
    assert candle_partitions_ensure().created == []


def test_upserts_across_partitions_insert_then_update_and_the_unique_constraint_holds():
    # 15m bars a day apart from mid-2010 to early 2011: the default partition, then ten monthly ones.
    candles = make_candles(300, start=datetime(2010, 5, 3, 4, 0, tzinfo=UTC))
    first = candles_upsert(symbol="INFY.NS", timeframe=Timeframe.M15, candles=candles, source="test")
    assert (first.inserted, first.updated) == (300, 0)
    moved = candle_partitions_ensure()
    assert moved.moved == 300 and len(moved.created) == 10  # 2010-05 .. 2011-02

    changed = candles.assign(close=candles["close"] * 1.001, high=candles["high"] * 1.002)
    again = candles_upsert(symbol="INFY.NS", timeframe=Timeframe.M15, candles=changed, source="csv")
    assert (again.inserted, again.updated) == (0, 300)
    rows = MarketData.objects.filter(symbol="INFY.NS")
    assert rows.count() == 300
    assert set(rows.values_list("source", flat=True)) == {"csv"}
    last = rows.order_by("-timestamp").first()
    assert last.close_price == pytest.approx(changed["close"].iloc[-1])

    with pytest.raises(IntegrityError), transaction.atomic():
        MarketDataFactory(symbol="INFY.NS", timeframe="15m", timestamp=last.timestamp)


def test_candle_ids_stay_unique_and_increasing_across_partitions():
    a = MarketDataFactory(timeframe="1m", timestamp=datetime(2012, 1, 31, 23, 59, tzinfo=UTC))
    b = MarketDataFactory(timestamp=datetime.now(UTC))
    c = MarketDataFactory(timeframe="5m", timestamp=datetime(2012, 2, 1, tzinfo=UTC))
    assert a.pk < b.pk < c.pk
    assert MarketData.objects.get(pk=b.pk).timestamp == b.timestamp


def test_admin_change_page_shows_a_candle_and_a_form_save_corrects_it_in_place():
    candle = MarketDataFactory(symbol="TCS.NS", timestamp=datetime.now(UTC).replace(microsecond=0))
    other = MarketDataFactory(symbol="TCS.NS", timestamp=datetime(2013, 5, 6, tzinfo=UTC))
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get("/admin/market/marketdata/").status_code == 200
    page = client.get(f"/admin/market/marketdata/{candle.pk}/change/")
    assert page.status_code == 200
    assert "TCS.NS" in page.content.decode() and "102.0" in page.content.decode()

    # What a change form does on save: a ModelForm of the instance, then save() (UPDATE ... WHERE id = ...).
    form = modelform_factory(MarketData, fields=["close_price", "source"])(
        {"close_price": "101.5", "source": "staff"}, instance=MarketData.objects.get(pk=other.pk)
    )
    assert form.is_valid(), form.errors
    form.save()
    corrected = MarketData.objects.get(pk=other.pk)
    assert (corrected.close_price, corrected.source, corrected.timestamp) == (101.5, "staff", other.timestamp)
    assert MarketData.objects.count() == 2

    response = client.post(f"/admin/market/marketdata/{other.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert list(MarketData.objects.values_list("pk", flat=True)) == [candle.pk]


def test_command_creates_partitions_and_lists_them(capsys):
    with time_machine.travel(datetime(2032, 1, 10, tzinfo=UTC), tick=False):
        call_command("ensure_candle_partitions", "--months-ahead", "1", "--list")
    out = capsys.readouterr().out
    assert "Partitions created: market_marketdata_y2032m01, market_marketdata_y2032m02;" in out
    assert (
        "market_marketdata_y2032m02  FOR VALUES FROM ('2032-02-01 00:00:00+00') TO ('2032-03-01 00:00:00+00')"
        in out
    )
    assert f"{DEFAULT_PARTITION}  DEFAULT" in out and f"{COARSE}  DEFAULT" in out


def test_beat_runs_the_partition_task_daily_with_an_expiry():
    entry = BEAT_SCHEDULE["market-candle-partitions"]
    assert entry["task"] == ensure_candle_partitions.name
    assert entry["schedule"].hour == {2} and entry["options"]["expire_seconds"] > 0


@pytest.mark.django_db(transaction=True)
def test_migration_partitions_existing_rows_and_reverses_keeping_them():
    before, after = (
        [("market", "0010_market_session")],
        [("market", "0011_partition_candles_by_month")],
    )
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = 'market_marketdata'::regclass")
        assert cursor.fetchone()[0] == "r"
    old = executor.loader.project_state(before).apps.get_model("market", "MarketData")
    stamps = [datetime(2019, 12, 30, 18, 30, tzinfo=UTC) + timedelta(days=i) for i in range(5)]
    old.objects.bulk_create(
        old(
            symbol="TCS.NS",
            timeframe=timeframe,
            timestamp=ts,
            open_price=100,
            high_price=101,
            low_price=99,
            close_price=100 + i / 10,
            volume=1,
            source="csv",
            final=True,
        )
        for timeframe in ("1D", "1m")
        for i, ts in enumerate(stamps)
    )
    kept = list(old.objects.order_by("id").values_list("id", "timestamp", "close_price"))

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    assert list(MarketData.objects.order_by("id").values_list("id", "timestamp", "close_price")) == kept
    assert {_partition_of(i) for i, *_ in kept[:5]} == {COARSE}  # daily bars
    assert {_partition_of(i) for i, *_ in kept[5:]} == {
        "market_marketdata_y2019m12",
        "market_marketdata_y2020m01",
    }
    assert (
        MarketDataFactory(timestamp=datetime(2020, 1, 9, tzinfo=UTC)).pk > kept[-1][0]
    )  # the sequence went on
    kept = list(MarketData.objects.order_by("id").values_list("id", "timestamp", "close_price"))

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(before)
    assert list(old.objects.order_by("id").values_list("id", "timestamp", "close_price")) == kept
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = 'market_marketdata'::regclass")
        assert cursor.fetchone()[0] == "r"

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert MarketData.objects.count() == 11
