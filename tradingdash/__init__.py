"""tradingdash: Django backend for an AI-assisted trading dashboard (NSE first)."""

__version__ = "0.1.0"

from tradingdash.celery import app as celery_app

__all__ = ["__version__", "celery_app"]
