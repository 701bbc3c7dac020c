"""Operators' bad numbers on the sync commands are refused by name and range before anything runs."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from market.models import CoverageInterval, MarketData, SyncRun
from market.tests.factories import InstrumentFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("days", ["0", "-5", "36501", "ten"])
def test_sync_market_data_refuses_days_out_of_range(days):
    """`--days -5` or `--days 0` crashed with an IntegrityError traceback from the coverage table's constraint."""
    InstrumentFactory(symbol="TCS.NS")
    with pytest.raises(
        CommandError, match=r"argument --days: .*(out of range|not a whole number).*1 to 36500"
    ):
        call_command("sync_market_data", "TCS", "--days", days, "--provider", "synthetic", verbosity=0)
    assert not MarketData.objects.exists() and not CoverageInterval.objects.exists()


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("--days", "-5", "from 1 to 36500"),
        ("--days", "0", "from 1 to 36500"),
        ("--batch-size", "0", "at least 1"),
        ("--batch-size", "-3", "at least 1"),
    ],
)
def test_sync_all_instruments_refuses_numbers_out_of_range(option, value, allowed):
    """`--days -5` crashed with an IntegrityError; `--batch-size 0` silently ran batches of MARKET_SYNC_BATCH_SIZE
    and `--batch-size -3` batches of one symbol each, neither what was asked."""
    InstrumentFactory(symbol="TCS.NS")
    with pytest.raises(CommandError, match=f"argument {option}: {value} is out of range: {allowed}"):
        call_command("sync_all_instruments", option, value, "--inline", verbosity=0)
    assert not SyncRun.objects.exists()


def test_sync_all_instruments_takes_the_batch_size_asked():
    for symbol in ("TCS.NS", "INFY.NS", "RELIANCE.NS"):
        InstrumentFactory(symbol=symbol)
    call_command("sync_all_instruments", "--batch-size", "2", "--days", "30", "--inline", verbosity=0)
    run = SyncRun.objects.get()
    assert run.batch_size == 2 and run.days == 30


def test_load_demo_data_refuses_days_out_of_range():
    """`load_demo_data --days -5` crashed with an IntegrityError traceback."""
    InstrumentFactory(symbol="TCS.NS")
    with pytest.raises(CommandError, match=r"argument --days: -5 is out of range: from 1 to 36500"):
        call_command("load_demo_data", "--days", "-5", verbosity=0)
    assert not MarketData.objects.exists()


def test_load_demo_data_refuses_an_unknown_timeframe():
    """`load_demo_data --timeframe 2D` crashed with a ValueError traceback."""
    InstrumentFactory(symbol="TCS.NS")
    with pytest.raises(CommandError, match="Unknown timeframe '2D'"):
        call_command("load_demo_data", "--timeframe", "2D", verbosity=0)
