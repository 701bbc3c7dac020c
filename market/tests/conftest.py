import importlib
from types import ModuleType

import pytest

from market.calendar import ExchangeCalendar, bundled_nse_holidays


@pytest.fixture(scope="session")
def nse_calendar() -> ExchangeCalendar:
    return ExchangeCalendar(bundled_nse_holidays())


@pytest.fixture(scope="session")
def yfinance_module() -> ModuleType:
    """market.providers.yfinance, imported with yfinance on plain requests.

    yfinance reads YF_DISABLE_CURL_CFFI once, when it is first imported, so the test modules import the
    provider through this fixture rather than at the top.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("YF_DISABLE_CURL_CFFI", "1")
        yield importlib.import_module("market.providers.yfinance")


@pytest.fixture(scope="session")
def yfinance_cache_dir(tmp_path_factory):
    # yfinance's cache location is process-wide and set once, so the whole session shares one.
    return tmp_path_factory.mktemp("yfinance-cache")
