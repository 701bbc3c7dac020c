"""Request body parsing."""

from __future__ import annotations

import json

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, except that a body nested deeper than Python's decoder recurses (e.g. 100,000 `[`,
    well under the size limit) is a 400 like any malformed JSON, not a RecursionError and a 500; and so is a
    string holding a lone surrogate escape (`"\\ud800"`): valid JSON, but no text, which the database and the
    password hasher cannot encode (a 500 wherever it reached them)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply.") from exc
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")  # keys and values alike
        except UnicodeEncodeError as exc:
            raise ParseError("JSON parse error - a string holds a lone surrogate (\\ud800-\\udfff).") from exc
        return data
