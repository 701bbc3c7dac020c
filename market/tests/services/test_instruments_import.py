"""`manage.py load_instruments FILE`: NSE's equity list into the catalogue, keyed by ISIN, idempotent.
The fixture is made up (fictitious companies and ISIN-shaped keys), in EQUITY_L.csv's layout."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from market.models import Instrument
from market.tests.factories import InstrumentFactory

pytestmark = pytest.mark.django_db
SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "listings" / "EQUITY_L_sample.csv"


def _load(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("load_instruments", str(SAMPLE), *args, stdout=out, stderr=err, verbosity=0)
    return out.getvalue(), err.getvalue()


def test_import_twice_changes_nothing_and_keeps_hand_added_indices():
    InstrumentFactory(symbol="^NSEI", kind=Instrument.Kind.INDEX)
    out, err = _load()
    assert "2 created" in out and "1 other series" in out and "1 rejected" in out
    assert f"{SAMPLE}:5: invalid ISIN" in err
    alpha = Instrument.objects.get(isin="INE000A01010")
    assert (alpha.symbol, alpha.name, alpha.series, str(alpha.listed_on)) == (
        "EXAMPLEA.NS",
        "Example Alpha Limited",
        "EQ",
        "2008-10-06",
    )
    assert not alpha.active  # the whole market is not synced unless asked (--activate)
    before = list(Instrument.objects.order_by("symbol").values())
    out, _ = _load()
    assert "0 created, 0 updated, 2 unchanged" in out
    assert list(Instrument.objects.order_by("symbol").values()) == before
    assert Instrument.objects.filter(symbol="^NSEI").exists()


def test_isin_is_the_key_a_renamed_symbol_keeps_its_row():
    renamed = InstrumentFactory(symbol="OLDNAME.NS", isin="INE000B01018", active=True)
    _load()
    renamed.refresh_from_db()
    assert renamed.symbol == "EXAMPLEB.NS" and renamed.active


def test_a_hand_added_instrument_with_the_same_symbol_is_adopted():
    by_hand = InstrumentFactory(symbol="EXAMPLEA.NS", isin=None, active=True)
    _load("--activate")
    by_hand.refresh_from_db()
    assert by_hand.isin == "INE000A01010" and by_hand.active
    assert Instrument.objects.filter(symbol="EXAMPLEA.NS").count() == 1
    assert Instrument.objects.get(symbol="EXAMPLEB.NS").active


def test_series_filter_and_unreadable_files():
    out, _ = _load("--series", "all")
    assert "3 created" in out
    with pytest.raises(CommandError, match="missing column"):
        call_command("load_instruments", str(Path(__file__)), stdout=StringIO(), verbosity=0)
    with pytest.raises(CommandError, match="No such file"):
        call_command("load_instruments", "/nonexistent/EQUITY_L.csv", stdout=StringIO(), verbosity=0)
