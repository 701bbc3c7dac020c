"""The web worker's cap on glibc malloc arenas (tradingdash/malloc.py, set by gunicorn.conf.py's post_fork)."""

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc arenas")

# In a fresh interpreter (the cap is for the whole process): gunicorn's post_fork hook, then 8 threads alive at
# once that each allocate; prints the number of arenas (<heap> elements of malloc_info).
_ARENAS_AFTER_THE_HOOK = """
import ctypes, os, runpy, tempfile, threading

runpy.run_path("tradingdash/gunicorn.conf.py")["post_fork"](None, None)
barrier = threading.Barrier(9)

def allocate():
    ctypes.create_string_buffer(4096)
    barrier.wait()
    barrier.wait()

threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
barrier.wait()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
handle, path = tempfile.mkstemp()
os.close(handle)
out = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, ctypes.c_void_p(out))
libc.fclose(ctypes.c_void_p(out))
barrier.wait()
print(open(path).read().count("<heap nr="))
os.remove(path)
"""


def _arenas(limit: str) -> int:
    env = {**os.environ, "WEB_MALLOC_ARENA_MAX": limit}
    env.pop("MALLOC_ARENA_MAX", None)
    result = subprocess.run(
        [sys.executable, "-c", _ARENAS_AFTER_THE_HOOK],
        cwd=Path(settings.BASE_DIR),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(result.stdout.split()[-1])


def test_the_worker_hook_caps_malloc_arenas():
    assert _arenas("2") <= 2


def test_zero_keeps_glibcs_default_of_an_arena_per_thread():
    # Also shows the test above can see more arenas than the cap.
    assert _arenas("0") > 2
