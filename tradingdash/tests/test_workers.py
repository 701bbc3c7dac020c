"""The web worker settles the garbage collector once its app is loaded (tradingdash.workers)."""

import subprocess
import sys

import pytest

from tradingdash import workers
from tradingdash.tests.fresh_process import assert_script_passes, settings_env


def test_settle_gc_freezes_what_is_loaded_and_sets_the_young_threshold():
    # In a child process: freezing is for the life of the process.
    code = (
        "import gc; from tradingdash.workers import settle_gc; "
        "assert gc.get_freeze_count() == 0; settle_gc(5000); "
        "print(gc.get_freeze_count() > 10_000, gc.get_threshold()[0])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "5000"]


def test_the_worker_loads_the_urlconf_and_provider_then_settles_gc_with_the_configured_threshold(monkeypatch):
    from market import sources

    calls = []
    monkeypatch.setattr(workers.UvicornWorker, "load_wsgi", lambda self: calls.append("app"))
    monkeypatch.setattr(sources, "provider_preload", lambda: calls.append("provider"))
    monkeypatch.setattr(workers, "settle_gc", lambda threshold: calls.append(threshold))
    monkeypatch.setenv("GUNICORN_GC_THRESHOLD", "12345")
    worker = workers.AsgiWorker.__new__(workers.AsgiWorker)  # no sockets or config: only the hook is tested
    worker.load_wsgi()
    assert calls == ["app", "provider", 12345]
    monkeypatch.delenv("GUNICORN_GC_THRESHOLD")
    worker.load_wsgi()
    assert calls[-1] == workers.DEFAULT_GC_THRESHOLD


PRELOAD = """
import sys
import django
django.setup()
from market.sources import provider_preload
assert "market.providers.{name}" not in sys.modules and "pandas" not in sys.modules
provider_preload()
assert "market.providers.{name}" in sys.modules and "pandas" in sys.modules
print("ok")
"""


@pytest.mark.parametrize("name", ["csv", "synthetic", "yfinance"])
def test_provider_preload_imports_the_configured_providers_module_without_building_it(name):
    assert_script_passes(PRELOAD.format(name=name), env=settings_env(MARKET_DATA_PROVIDER=name))


@pytest.mark.parametrize(
    "name",
    [
        "no_such_package.module:factory",
        "",
        ":factory",
        ".relative:factory",
        "yfinance ",
        "json",
        "td_preload_raises:factory",
    ],
)
def test_a_provider_that_cannot_be_imported_is_logged_not_raised(settings, name, monkeypatch, tmp_path):
    """Whatever the configured name, or its module raising at import, the worker starts (gunicorn stops the whole
    server when a worker fails to boot); building the provider fails where it is used, as before."""
    from structlog.testing import capture_logs

    from market.sources import provider_preload

    (tmp_path / "td_preload_raises.py").write_text("raise OSError('a library failed to load')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    settings.MARKET_DATA_PROVIDER = name
    with capture_logs() as logs:
        provider_preload()
    assert [entry["event"] for entry in logs] == ["provider_preload_failed"]


CELERY_PRELOAD = """
import sys
from celery.signals import worker_init
from tradingdash.celery import app, computation_preload
assert computation_preload in [ref() for _, ref in worker_init.receivers], "not connected to worker_init"
assert "pandas" not in sys.modules and "talib" not in sys.modules
worker_init.send(sender=None)
assert {"pandas", "talib", "market.providers.synthetic"} <= set(sys.modules), "not preloaded"
assert "tensorflow" not in sys.modules
print("ok")
"""


def test_a_celery_worker_preloads_pandas_ta_lib_and_the_provider_before_its_pool_forks():
    assert_script_passes(CELERY_PRELOAD, env=settings_env(MARKET_DATA_PROVIDER="synthetic"))
