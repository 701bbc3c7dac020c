"""ASGI entry point (e.g. gunicorn -k uvicorn.workers.UvicornWorker tradingdash.asgi:application)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingdash.settings")

application = get_asgi_application()
