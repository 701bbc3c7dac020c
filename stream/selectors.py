"""Reads for the live stream: which symbols exist, and which ones to keep fresh."""

from __future__ import annotations

import structlog
from django.apps import apps

from market.models import Instrument
from stream.live import live_symbols

logger = structlog.get_logger(__name__)


def instruments_exchanges(symbols: list[str]) -> dict[str, str]:
    """Exchange of each catalogued symbol among `symbols` (symbols outside the catalogue are left out)."""
    return dict(Instrument.objects.filter(symbol__in=symbols).values_list("symbol", "exchange"))


def watched_symbols() -> set[str]:
    """Symbols someone watches. Until the watchlists app is installed, the catalogue's active instruments (the
    same watchlist the scheduled sync covers)."""
    if apps.is_installed("watchlists"):
        from watchlists.selectors import watched_symbols_union

        return watched_symbols_union() | _active_instruments()
    return _active_instruments()


def _active_instruments() -> set[str]:
    return set(Instrument.objects.filter(active=True).values_list("symbol", flat=True))


def symbols_to_refresh() -> set[str]:
    """The union of watched symbols, symbols with live subscribers and those of active price alerts."""
    return watched_symbols() | live_symbols() | alerted_symbols()


def alerted_symbols() -> set[str]:
    """Symbols of active price and change alerts (none until the alerts app is installed)."""
    if apps.is_installed("alerts"):
        from alerts.selectors import alerted_symbols as of_alerts

        return of_alerts()
    return set()
