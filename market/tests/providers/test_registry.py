import subprocess
import sys
from pathlib import Path

import pytest

from market.providers import build_provider
from market.providers.csv import CsvProvider
from market.providers.synthetic import SyntheticProvider

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def test_builds_providers_by_name(nse_calendar, tmp_path):
    synthetic = build_provider("synthetic", symbols={"TCS.NS"}, calendar=nse_calendar)
    csv = build_provider("csv", directory=tmp_path)
    assert isinstance(synthetic, SyntheticProvider) and synthetic.name == "synthetic"
    assert isinstance(csv, CsvProvider) and csv.name == "csv"


def test_builds_the_yfinance_provider(yfinance_module, yfinance_cache_dir):
    provider = build_provider("yfinance", cache_dir=yfinance_cache_dir, timeout=5)
    assert isinstance(provider, yfinance_module.YFinanceProvider)
    assert provider.name == "yfinance"


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="use one of: yfinance, synthetic, csv"):
        build_provider("bloomberg")


def test_yfinance_is_imported_only_when_its_provider_is_built(tmp_path):
    code = (
        "import sys\n"
        "from market.providers import build_provider\n"
        f"build_provider('csv', directory={str(tmp_path)!r})\n"
        "assert 'yfinance' not in sys.modules, 'yfinance imported eagerly'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT_ROOT)
