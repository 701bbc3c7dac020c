from datetime import UTC, datetime
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command

from market.services import candles_sync
from market.sources import get_provider
from market.timeframes import Timeframe

pytestmark = pytest.mark.django_db


@pytest.fixture
def frozen():
    with time_machine.travel(datetime(2026, 11, 27, 11, 0, tzinfo=UTC), tick=False):  # Friday after the close
        yield


def test_a_symbol_that_fails_makes_the_command_fail_after_the_others(frozen):
    """It went on past the failure and exited 0, so a script or cron job never learnt that nothing was made
    for it (sync_market_data already said "1 of 2 symbols failed")."""
    candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=600, provider=get_provider("synthetic"))
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="1 of 2 symbols failed"):
        call_command("generate_signals", "NOSUCHCO", "TCS", stdout=out, stderr=err, verbosity=0)
    assert "TCS.NS:" in out.getvalue() and "NOSUCHCO.NS: No market data" in err.getvalue()


def test_a_symbol_with_stale_candles_is_reported_and_the_others_still_get_their_signal(monkeypatch):
    from market.tests.factories import down_provider

    with time_machine.travel(datetime(2026, 11, 23, 11, 0, tzinfo=UTC), tick=False):  # Monday after the close
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=600, provider=get_provider("synthetic"))
    with time_machine.travel(datetime(2026, 11, 27, 11, 0, tzinfo=UTC), tick=False):  # Friday after the close
        candles_sync(symbol="INFY.NS", timeframe=Timeframe.D1, days=600, provider=get_provider("synthetic"))
        monkeypatch.setattr("market.services.get_provider", lambda name=None: down_provider())
        out, err = StringIO(), StringIO()
        with pytest.raises(CommandError, match="1 of 2 symbols failed"):
            call_command("generate_signals", "TCS", "INFY", stdout=out, stderr=err, verbosity=0)
    assert "INFY.NS:" in out.getvalue()
    assert "TCS.NS: Market data is stale" in err.getvalue()


def test_a_symbol_the_command_skipped_for_stale_candles_gets_its_signal_when_they_arrive(
    monkeypatch, django_capture_on_commit_callbacks
):
    """Run by cron instead of beat, the command skipped the symbol and nothing made its signal once the
    candles arrived: that bar never had one (as for the scheduled run, signals.tasks)."""
    from market.tests.factories import down_provider, provider_configured
    from signals.models import TradingSignal

    synthetic = get_provider("synthetic")
    with time_machine.travel(datetime(2026, 11, 23, 11, 0, tzinfo=UTC), tick=False):  # Monday after the close
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=600, provider=synthetic)
    with time_machine.travel(datetime(2026, 11, 27, 11, 0, tzinfo=UTC), tick=False):  # Friday after the close
        provider_configured(monkeypatch, down_provider())
        with pytest.raises(CommandError):
            call_command("generate_signals", "TCS", stdout=StringIO(), stderr=StringIO(), verbosity=0)
        provider_configured(monkeypatch, synthetic)  # back: the market sync's retry stores the week
        with django_capture_on_commit_callbacks(execute=True):
            candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1)
    assert [s.candle_timestamp.isoformat() for s in TradingSignal.objects.all()] == [
        "2026-11-26T18:30:00+00:00"  # Friday's bar
    ]
