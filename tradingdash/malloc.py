"""glibc malloc arenas in the web worker.

glibc gives each thread that allocates an arena of its own (heaps it keeps what its thread freed in), up to 8
per core. Under ASGI a request that runs sync code gets a thread of its own (asgiref's ThreadSensitiveContext;
since the eighth look a kept one, tradingdash/asgi_handler.py) and psycopg's pool runs threads too, so a web
worker soon had 15 arenas: 16-22 MiB of its RSS after the
side-by-side run, for the same CPU per request as with 2 (bench/README.md, "Web worker RSS"). The threads run
Python under one GIL, so they rarely contend for an arena anyway.
"""

from __future__ import annotations

import ctypes

M_ARENA_MAX = -8  # glibc's <malloc.h>


def malloc_arena_max_set(limit: int) -> bool:
    """Cap the malloc arenas of this process at `limit` (threads share them beyond it); 0 leaves glibc's
    default. False when nothing was set: 0, or a C library without the setting (musl, macOS)."""
    if limit <= 0:
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    return mallopt is not None and mallopt(M_ARENA_MAX, limit) == 1
