"""Strict request bodies: a field the API does not know is an error, never silently ignored (a misspelt
`{"models": [...]}` would otherwise train every model)."""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework import serializers


class StrictInputSerializer(serializers.Serializer):
    """Input serializer that answers 400 naming each unknown field of the body."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(str(key) for key in data if key not in self.fields)
            if unknown:
                raise serializers.ValidationError(
                    {key[:64]: ["Unknown field; this endpoint does not accept it."] for key in unknown[:20]}
                )
        return super().to_internal_value(data)


class TextField(serializers.CharField):
    """A CharField that takes text only: DRF's would turn the number 0 into the name "0"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)
