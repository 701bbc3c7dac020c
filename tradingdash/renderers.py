"""The API's JSON renderer: every response goes through market.presentation.present, so times read in the
exchange's clock and numbers at a person's precision, in one place rather than in each serializer."""

from __future__ import annotations

from rest_framework.renderers import JSONRenderer

from market.presentation import present
from market.sources import price_tick_for_symbol, time_zone_for_symbol


class PresentingJSONRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if data is not None and (response is None or response.status_code < 400):
            data = present(data, zone_of=time_zone_for_symbol, tick_of=price_tick_for_symbol)
        return super().render(data, accepted_media_type, renderer_context)
