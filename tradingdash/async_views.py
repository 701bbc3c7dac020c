"""Hot read endpoints served from memory on the event loop under ASGI, everything else by the DRF view.

Production serves HTTP from uvicorn workers (tradingdash/gunicorn.conf.py), where Django runs a sync view in a
thread: a hop per request that cost more CPU than a cached quote itself (bench/README.md, side by side).
`memory_first` wraps a DRF APIView in an async view: a GET whose token and user this process has already
verified (accounts.authentication.authenticate_from_memory) and whose answer the view's own code finds in the
per-process caches or with one async Redis read (`answer` returns it, or None) is answered on the event loop,
rendered as the DRF view renders it. Anything else (no token, a token or user not seen lately, a cache miss, an
invalid input, another method, an Accept header other than JSON) goes to the unchanged DRF view in a thread,
whose answer (data, error or 401) is the API's. The DRF class stays what the URL resolves to for
drf-spectacular, so the OpenAPI schema is unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from accounts.authentication import authenticate_from_memory
from tradingdash.cache import local_only

# Accept headers for which DRF's content negotiation picks the JSON renderer with no parameters (an
# `indent=` parameter, or any other type, goes through DRF).
_JSON_ACCEPTS = frozenset({None, "", "*/*", "application/json"})
Answer = Callable[..., Awaitable[object]]


def memory_first(view_class: type[APIView], answer: Answer):
    """`view_class.as_view()` as an async view whose GETs `answer(request, **url_kwargs)` may serve: data
    (rendered by the DRF view's renderer), or bytes that are already the JSON body; None to decline. Any
    exception `answer` raises (tradingdash.cache.NotInLocalCache, Django's SynchronousOnlyOperation for a query,
    an invalid input) also declines: `answer` only reads, so the DRF view runs the same code again and its
    answer, or its error response, is the API's."""
    # Only views whose every check is the token's: throttles, other permissions or a queryset would be skipped.
    if view_class.permission_classes != [IsAuthenticated] or view_class.throttle_classes:
        raise ValueError(
            f"{view_class.__name__}: memory_first serves only IsAuthenticated, unthrottled views"
        )
    drf_view = view_class.as_view()
    renderer = view_class.renderer_classes[0]()
    instance = view_class()
    instance.setup(None)  # as as_view does per request: a view with `get` also answers HEAD
    headers = instance.default_response_headers

    def sync_view(request, *args, **kwargs):
        response = drf_view(request, *args, **kwargs)
        if callable(getattr(response, "render", None)):
            response.render()  # here, not in another thread hop after this one
        return response

    in_thread = sync_to_async(sync_view)

    async def view(request: HttpRequest, *args, **kwargs):
        if request.method == "GET" and request.headers.get("Accept") in _JSON_ACCEPTS:
            authenticated = authenticate_from_memory(request)
            if authenticated is not None:
                try:
                    with local_only():
                        data = await answer(request, *args, **kwargs)
                        if data is not None and not isinstance(data, bytes):
                            data = renderer.render(data, renderer.media_type, {})
                except Exception:  # declined: the DRF view answers, errors included
                    data = None
                if data is not None:
                    request.user = authenticated[0]  # as DRF sets it: the request log names the user
                    response = HttpResponse(data, content_type=renderer.media_type)
                    for key, value in headers.items():
                        response[key] = value
                    return response
        return await in_thread(request, *args, **kwargs)

    # What Django and drf-spectacular read off the DRF view: cls, initkwargs, view_class, csrf_exempt.
    view.__dict__.update({k: v for k, v in drf_view.__dict__.items() if k != "__wrapped__"})
    view.__name__ = view.__qualname__ = view_class.__name__
    view.__doc__ = view_class.__doc__
    return view
