"""The web worker settles the garbage collector once its app is loaded (tradingdash.workers)."""

import subprocess
import sys

from tradingdash import workers


def test_settle_gc_freezes_what_is_loaded_and_sets_the_young_threshold():
    # In a child process: freezing is for the life of the process.
    code = (
        "import gc; from tradingdash.workers import settle_gc; "
        "assert gc.get_freeze_count() == 0; settle_gc(5000); "
        "print(gc.get_freeze_count() > 10_000, gc.get_threshold()[0])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "5000"]


def test_the_worker_loads_the_urlconf_then_settles_gc_with_the_configured_threshold(monkeypatch):
    calls = []
    monkeypatch.setattr(workers.UvicornWorker, "load_wsgi", lambda self: calls.append("app"))
    monkeypatch.setattr(workers, "settle_gc", lambda threshold: calls.append(threshold))
    monkeypatch.setenv("GUNICORN_GC_THRESHOLD", "12345")
    worker = workers.AsgiWorker.__new__(workers.AsgiWorker)  # no sockets or config: only the hook is tested
    worker.load_wsgi()
    assert calls == ["app", 12345]
    monkeypatch.delenv("GUNICORN_GC_THRESHOLD")
    worker.load_wsgi()
    assert calls[-1] == workers.DEFAULT_GC_THRESHOLD
