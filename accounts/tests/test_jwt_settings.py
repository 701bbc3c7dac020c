"""The JWT signing key as operators set it: `.env.example` lists `JWT_SIGNING_KEY=` empty ("defaults to
SECRET_KEY"), and docker compose's env_file hands that to the container as an empty variable."""

from tradingdash.tests.fresh_process import assert_script_passes, settings_env

SCRIPT = """
import django
django.setup()
from django.conf import settings
from rest_framework_simplejwt.tokens import AccessToken
key = settings.SIMPLE_JWT["SIGNING_KEY"]
assert key == settings.SECRET_KEY, repr(key)
token = str(AccessToken())  # PyJWT refuses an empty HMAC key: every login and every request was a 500
assert AccessToken(token)["token_type"] == "access"
print("ok")
"""


def test_an_empty_jwt_signing_key_means_the_secret_key():
    assert_script_passes(SCRIPT, env=settings_env(JWT_SIGNING_KEY=""))
