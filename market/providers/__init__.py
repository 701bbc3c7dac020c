"""Market data providers behind one interface (`market.providers.base.Provider`), built by name."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from market.providers.base import Provider

PROVIDER_NAMES = ("yfinance", "synthetic", "csv")
PROVIDER_MODULES = {name: f"market.providers.{name}" for name in PROVIDER_NAMES}


def provider_import(name: str) -> bool:
    """Import the module of the provider called `name` (one of PROVIDER_NAMES, or `package.module:factory` as
    market.sources builds it) and what it needs (pandas; for yfinance its HTTP stack) without building the
    provider. False for a name that names neither (building it would fail anyway)."""
    module, colon, _ = name.partition(":")
    module = PROVIDER_MODULES.get(name) or (module if colon else "")
    if not module:
        return False
    import_module(module)
    return True


def build_provider(name: str, **kwargs: Any) -> Provider:
    """Build the provider called `name` with its keyword arguments.

    Imports lazily, so yfinance (and its HTTP stack) is loaded only by processes that use it.
    """
    if name == "yfinance":
        from market.providers.yfinance import YFinanceProvider

        return YFinanceProvider(**kwargs)
    if name == "synthetic":
        from market.providers.synthetic import SyntheticProvider

        return SyntheticProvider(**kwargs)
    if name == "csv":
        from market.providers.csv import CsvProvider

        return CsvProvider(**kwargs)
    raise ValueError(f"Unknown market data provider {name!r}; use one of: {', '.join(PROVIDER_NAMES)}")
