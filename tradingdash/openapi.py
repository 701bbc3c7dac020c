"""OpenAPI schema: every operation documents our error shape for the statuses it can return, so clients and
schema-driven fuzzers know them."""

from __future__ import annotations

from django.core.validators import ProhibitNullCharactersValidator
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers

from tradingdash.inputs import StrictInputSerializer


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable snake_case error code.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    details = serializers.DictField(required=False, help_text="Optional details, e.g. per-field errors.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


_DESCRIPTIONS = {
    "400": "Invalid input.",
    "401": "Missing, expired or invalid credentials.",
    "403": "Authenticated but not allowed.",
    "404": "Not found.",
    "413": "Request body too large.",
    "422": "Valid request that the available data cannot serve.",
    "429": "Too many requests; see Retry-After.",
    "503": "An upstream service is unavailable; see Retry-After.",
}


_NO_NUL = "[^\\u0000]*"
# One character that str.strip() keeps: Python's whitespace is wider than ECMA's \s (\x1c-\x1f, \x85).
_NOT_STRIPPED = "[^\\s\\u0000\\u001c-\\u001f\\u0085]"


class AutoSchema(SpectacularAutoSchema):
    """Adds the JSON error responses (400/401/403/404/429 and any the view declares) to every operation."""

    def _insert_field_validators(self, field, schema):
        """Also state what DRF's CharField refuses with a 400, or schema-driven clients will send it: NUL
        characters, and text that is blank once stripped."""
        super()._insert_field_validators(field, schema)
        if schema.get("type") != "string" or {"pattern", "enum", "format"} & set(schema):
            return
        if not any(isinstance(v, ProhibitNullCharactersValidator) for v in field.validators):
            return
        stripped = getattr(field, "trim_whitespace", False) or getattr(field, "blank_when_stripped", False)
        if stripped and not getattr(field, "allow_blank", True):
            schema["pattern"] = f"^{_NO_NUL}{_NOT_STRIPPED}{_NO_NUL}$"
        else:
            schema["pattern"] = f"^{_NO_NUL}$"

    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        """A strict request body (tradingdash.inputs) refuses fields it does not know: say so in the schema."""
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        if direction == "request" and isinstance(serializer, StrictInputSerializer):
            schema["additionalProperties"] = False
        return schema

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        codes = {"400", "404", "429"}
        if self.get_auth():
            codes |= {"401", "403"}
        codes |= {str(c) for c in getattr(self.view, "extra_error_statuses", ())}
        for code in sorted(codes):
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                response["description"] = _DESCRIPTIONS.get(code, "Error.")
                responses[code] = response
        return responses
