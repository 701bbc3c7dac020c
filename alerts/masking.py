"""Showing channel URLs and secrets without revealing them (API, admin, logs)."""

from __future__ import annotations

from urllib.parse import urlsplit

_TAIL = 4


def mask_url(url: str, *, show_host: bool) -> str:
    """`https://hooks.example.com/…/abcd`: the scheme, the host when it is only an address (webhooks; an Apprise
    "host" is often a token), and the last four characters."""
    if not url:
        return ""
    parts = urlsplit(url)
    host = (parts.hostname or "") if show_host else "…"
    tail = url[-_TAIL:] if len(url) >= 4 * _TAIL else ""
    return f"{parts.scheme}://{host}/…/{tail}"


def mask_secret(secret: str) -> str:
    if not secret:
        return ""
    return "…" + secret[-_TAIL:] if len(secret) >= 4 * _TAIL else "…"
