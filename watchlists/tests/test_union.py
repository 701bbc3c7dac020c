import pytest

from stream.selectors import symbols_to_refresh
from watchlists.models import Watchlist
from watchlists.selectors import watched_symbols_union

pytestmark = pytest.mark.django_db


def test_the_refresher_covers_every_users_watchlist(user, staff_user):
    Watchlist.objects.create(user=user, name="mine", symbols=["TCS.NS", "INFY.NS"])
    Watchlist.objects.create(user=staff_user, name="theirs", symbols=["INFY.NS", "WIPRO.NS"])
    assert watched_symbols_union() == {"TCS.NS", "INFY.NS", "WIPRO.NS"}
    assert {"TCS.NS", "INFY.NS", "WIPRO.NS"} <= symbols_to_refresh()
