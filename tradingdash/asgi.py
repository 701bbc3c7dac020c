"""The ASGI application: HTTP (Django) and the live stream's WebSocket (/ws/stream) from one server.

Production runs it with gunicorn's uvicorn worker (tradingdash/gunicorn.conf.py); `make run` with uvicorn.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingdash.settings")

# Django first: the WebSocket routes import models. Django's ASGI handler, minus the thread a request served on
# the event loop would start for Django's bookkeeping alone (tradingdash/asgi_handler.py).
from tradingdash.asgi_handler import get_asgi_application

django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from stream.origin import CorsOriginValidator  # noqa: E402
from stream.routing import websocket_urlpatterns  # noqa: E402

if settings.DEBUG:  # `make run`: uvicorn serves the admin's static files, as runserver would
    django_application = ASGIStaticFilesHandler(django_application)

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": CorsOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
