import pytest
from django.core import checks

from tradingdash.checks import check_market_data_provider


@pytest.mark.parametrize("name", ["synthetic", "csv", "yfinance", "my_package.feeds:build"])
def test_a_known_provider_or_a_factory_path_passes(settings, name):
    settings.MARKET_DATA_PROVIDER = name
    assert check_market_data_provider(None) == []


@pytest.mark.parametrize("name", ["synthentic", "Synthetic", "", "my_package.feeds"])
def test_a_misspelled_provider_fails_the_checks_that_migrate_runs(settings, name):
    """A typo let `make run` migrate and serve, then answered every market request with a 500."""
    settings.MARKET_DATA_PROVIDER = name
    [error] = check_market_data_provider(None)
    assert error.level == checks.ERROR and error.id == "tradingdash.E001"
    assert repr(name) in error.msg and "yfinance, synthetic, csv" in error.hint


def test_the_check_is_registered(settings):
    settings.MARKET_DATA_PROVIDER = "synthentic"
    assert "tradingdash.E001" in {message.id for message in checks.run_checks()}
