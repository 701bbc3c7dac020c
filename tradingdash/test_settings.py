"""Settings for the test suite: the real settings module, pointed at the local PostgreSQL and Redis by default
(override with DATABASE_URL / REDIS_URL), with a cheaper bcrypt cost and tasks run inline."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-with-enough-length-0123456789")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tradingdash")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("CACHE_KEY_PREFIX", "tradingdash-test")
os.environ.setdefault("LOG_FORMAT", "console")
os.environ.setdefault("MARKET_DATA_PROVIDER", "synthetic")

from django.contrib.auth.hashers import BCryptSHA256PasswordHasher

from tradingdash.settings import *  # noqa: F403
from tradingdash.settings import BASE_DIR


class FastBCryptSHA256PasswordHasher(BCryptSHA256PasswordHasher):
    """Same algorithm as production, lower cost factor so the suite stays fast."""

    rounds = 4


PASSWORD_HASHERS = ["tradingdash.test_settings.FastBCryptSHA256PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
MEDIA_ROOT = BASE_DIR / "var" / "test-media"
LOG_LEVEL = "WARNING"
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
# Tiny models: the suite checks behaviour, bench/ measures the real configurations.
PREDICTION_MODEL_PARAMS = {
    "lstm": {"epochs": 2, "units": 8, "lookback": 10, "patience": 1},
    "random_forest": {"n_estimators": 25, "n_jobs": 1},
}
PREDICTION_TRAINING_BARS = 600
# The suite runs with DEBUG off but without `collectstatic`: templates link the apps' unhashed files. The
# production storage (hashed, compressed, with a manifest) is checked against a real gunicorn in
# tradingdash/tests/test_static_files.py.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True  # WhiteNoise serves the apps' files as they are, as under DEBUG=1
