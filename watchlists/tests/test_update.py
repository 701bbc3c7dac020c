"""Two edits of one watchlist made from copies loaded at the same time both stick."""

import pytest

from accounts.tests.factories import UserFactory
from watchlists.models import Watchlist
from watchlists.services import WatchlistError, watchlist_update

pytestmark = pytest.mark.django_db


def test_a_rename_and_a_symbols_change_from_concurrent_requests_both_persist():
    watchlist = Watchlist.objects.create(user=UserFactory(), name="Banks", symbols=["TCS.NS"])
    renaming = Watchlist.objects.get(pk=watchlist.pk)
    changing_symbols = Watchlist.objects.get(pk=watchlist.pk)
    watchlist_update(watchlist=renaming, name="Tech")
    updated = watchlist_update(watchlist=changing_symbols, symbols=["TCS.NS", "INFY.NS"])
    assert (updated.name, updated.symbols) == ("Tech", ["TCS.NS", "INFY.NS"])
    stored = Watchlist.objects.get(pk=watchlist.pk)
    assert (stored.name, stored.symbols) == ("Tech", ["TCS.NS", "INFY.NS"])


def test_renaming_to_a_name_in_use_is_refused_and_changes_nothing():
    user = UserFactory()
    Watchlist.objects.create(user=user, name="Tech", symbols=[])
    banks = Watchlist.objects.create(user=user, name="Banks", symbols=["TCS.NS"])
    with pytest.raises(WatchlistError):
        watchlist_update(watchlist=banks, name="Tech", symbols=[])
    stored = Watchlist.objects.get(pk=banks.pk)
    assert (stored.name, stored.symbols) == ("Banks", ["TCS.NS"])
