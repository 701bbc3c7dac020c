"""API routes are documented without a trailing slash; the trailing-slash variant is accepted as well but kept
out of the OpenAPI schema."""

from __future__ import annotations

from django.urls import URLPattern, path


def api_path(route: str, view, name: str) -> list[URLPattern]:
    """`route` (canonical, in the schema) plus `route/` (an alias)."""
    return [path(route, view, name=name), path(f"{route}/", view, name=f"{name}-slash")]


def drop_trailing_slash_aliases(endpoints: list, **kwargs) -> list:
    """drf-spectacular preprocessing hook: hide the aliases that api_path adds."""
    canonical = {p for p, *_ in endpoints if not p.endswith("/")}
    return [e for e in endpoints if not (e[0].endswith("/") and e[0].rstrip("/") in canonical)]
