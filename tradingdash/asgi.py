"""The ASGI application: HTTP (Django) and the live stream's WebSocket (/ws/stream) from one server.

Production runs it with gunicorn's uvicorn worker (tradingdash/gunicorn.conf.py); `make run` with uvicorn.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingdash.settings")

# Django first: the WebSocket routes import models.
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from stream.origin import CorsOriginValidator  # noqa: E402
from stream.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": CorsOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
