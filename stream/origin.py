"""Which web pages may open the live stream: the origins of CORS_ALLOWED_ORIGINS, as for the API."""

from __future__ import annotations

from channels.security.websocket import OriginValidator
from django.conf import settings


class CorsOriginValidator(OriginValidator):
    """Refuses the handshake (HTTP 403) from a browser page of another origin. Clients that send no Origin at all
    (scripts, servers; a browser always sends one) are let through: the stream authenticates with a token in
    its first message, never with cookies, so a foreign page gains nothing a script could not have."""

    def __init__(self, application):
        super().__init__(application, allowed_origins=[])

    def valid_origin(self, parsed_origin) -> bool:
        if parsed_origin is None:
            return True
        self.allowed_origins = settings.CORS_ALLOWED_ORIGINS
        return self.validate_origin(parsed_origin)
