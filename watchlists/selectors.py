from __future__ import annotations

from django.db.models import QuerySet

from market.models import Instrument
from watchlists.models import Watchlist


def watchlists_of(*, user) -> QuerySet[Watchlist]:
    return Watchlist.objects.filter(user=user)


def symbols_unknown(*, symbols: list[str]) -> list[str]:
    """The symbols that are not in the instrument catalogue, in the order given."""
    known = set(Instrument.objects.filter(symbol__in=symbols).values_list("symbol", flat=True))
    return [symbol for symbol in symbols if symbol not in known]


def watched_symbols_union() -> set[str]:
    """Every symbol on anyone's watchlist (the live quote refresher covers them while their exchange is open)."""
    symbols: set[str] = set()
    for listed in Watchlist.objects.values_list("symbols", flat=True).iterator():
        symbols.update(listed or [])
    return symbols
