import pytest

from tradingdash.tests.fresh_process import assert_script_passes, settings_env
from tradingdash.tests.production import _database_url

SCRIPT = """
import sys
import django
django.setup()
from django.urls import get_resolver
from django.test import Client
import tradingdash.asgi  # noqa: F401 - what a gunicorn worker loads
import tradingdash.wsgi  # noqa: F401
get_resolver().url_patterns  # import every view module
Client().get("/health")
Client().get("/api/schema")
assert "tensorflow" not in sys.modules, sorted(m for m in sys.modules if m.startswith("tensorflow"))[:5]
assert "keras" not in sys.modules
# scipy.stats alone was ~57 MiB of the web worker's 160 MiB budget (issue 12): only training needs it.
assert "scipy" not in sys.modules, sorted(m for m in sys.modules if m.startswith("scipy"))[:5]
# Only sending a notification or saving a channel needs Apprise (alerts/outbound.py): ~2 MiB of each worker.
assert "apprise" not in sys.modules
# joblib only when a model artifact is read or written (predictions/ml/base.py).
assert "joblib" not in sys.modules
# pandas and TA-Lib (~33 MiB) only where indicators, signals or models are computed; not for the hot reads either
# (test_historical_reads_never_load_pandas_or_ta_lib).
assert "pandas" not in sys.modules
assert "talib" not in sys.modules
print("ok")
"""


def test_web_process_never_imports_what_only_background_work_needs():
    assert_script_passes(SCRIPT, env=settings_env())


READS = """
import json, os, sys
import django
django.setup()
from django.test import Client
import tradingdash.asgi  # noqa: F401 - what a gunicorn worker loads
from django.urls import get_resolver
get_resolver().url_patterns
client = Client(HTTP_AUTHORIZATION="Bearer " + os.environ["READ_TOKEN"])
for path in (
    "/api/market/historical/TCS?timeframe=1D&limit=300",  # a miss: read from the database and rendered
    "/api/market/historical/TCS?timeframe=1D&limit=300",  # a hit
    "/api/market/historical/TCS?timeframe=1D&limit=300&format=columns",
    "/api/market/historical/TCS?timeframe=1W&limit=50",  # built from the stored days (market.resample)
    "/api/market/historical/TCS?timeframe=1M&limit=12&adjust=none&format=columns",
):
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code, response.content[:300])
    assert json.loads(response.content), path
loaded = sorted(m for m in ("pandas", "talib") if m in sys.modules)
assert not loaded, loaded
print("ok")
"""


@pytest.mark.django_db(transaction=True)
def test_historical_reads_never_load_pandas_or_ta_lib(user):
    """Reading, adjusting and rendering stored candles (as objects or columns) works on NumPy columns: none of it
    needs pandas (~28 MiB of a worker) or TA-Lib (which imports pandas itself), for NSE and BSE symbols (the
    other exchanges' calendars come from exchange_calendars, which uses pandas), weeks and months built from the
    stored days included. Indicators need TA-Lib. A worker still
    loads pandas with its market data provider (a quote that misses the cache asks it; market.sources.
    provider_preload), so this keeps the read path ready for a worker without one."""
    from rest_framework_simplejwt.tokens import AccessToken

    from market.calendar import ExchangeCalendar, bundled_nse_holidays
    from market.providers import build_provider
    from market.services import candles_sync
    from market.tests.factories import InstrumentFactory
    from market.timeframes import Timeframe

    InstrumentFactory(symbol="TCS.NS", name="Tata Consultancy Services")
    provider = build_provider(
        "synthetic", symbols=["TCS.NS"], calendar=ExchangeCalendar(bundled_nse_holidays()), history_days=800
    )
    candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=800, provider=provider)
    env = settings_env(DATABASE_URL=_database_url(), READ_TOKEN=str(AccessToken.for_user(user)))
    assert_script_passes(READS, env=env)
