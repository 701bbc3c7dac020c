"""The OpenAPI schema's symbol pattern and the API's symbol validation accept exactly the same strings, so
schema-driven clients and fuzzers neither send symbols we refuse nor miss ones we take."""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.api.fields import SYMBOL_MAX_LENGTH, SYMBOL_PATTERN, symbol_from_path
from market.symbols import InvalidSymbol

SCHEMA = re.compile(SYMBOL_PATTERN)


def accepted(raw: str) -> bool:
    try:
        symbol_from_path(raw)
    except InvalidSymbol:
        return False
    return True


def in_schema(raw: str) -> bool:
    # JSON Schema regexes are ECMA: `$` is the very end (Python's would also match before a final newline).
    return len(raw) <= SYMBOL_MAX_LENGTH and SCHEMA.search(raw) is not None and not raw.endswith("\n")


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.text(alphabet="AZaz09^.&- \n_/éNSBOL", max_size=24))
def test_pattern_and_validation_agree(raw, db):
    # `db`: a symbol with an unlisted suffix is looked up in the (seeded) catalogue before it is refused.
    assert in_schema(raw) == accepted(raw)


@pytest.mark.parametrize(
    "raw", ["RELIANCE", "tcs", "M&M", "BAJAJ-AUTO.NS", "^NSEI", "500325.BO", "A" * 17, "^" + "A" * 19]
)
def test_real_symbols_are_in_the_schema(raw):
    assert in_schema(raw) and accepted(raw)


@pytest.mark.parametrize(
    "raw",
    [" TCS", "TCS\n", "ſ", "A" * 18, "-A", "TCS.-X", "^", "TCS..NS", "ÜBER", "RY.TO", "7203.T", "TCS.NSE"],
)
def test_near_misses_are_outside_both(raw, db):
    assert not in_schema(raw) and not accepted(raw)


def test_path_symbol_with_spaces_or_non_ascii_is_400(auth_client, db):
    assert auth_client.get("/api/market/quote/%20TCS").status_code == 400
    assert auth_client.get("/api/market/quote/%C5%BF").status_code == 400  # long s, upper-cases to "S"


@pytest.mark.parametrize(
    "url",
    [
        "/api/market/historical/TCS?limit=",
        "/api/market/historical/TCS?timeframe=",
        "/api/market/historical/TCS?start=",
        "/api/predictions/TCS?timeframe=",
        "/api/predictions/TCS/accuracy?timeframe=",
        "/api/predictions/models/TCS?timeframe=",
        "/api/signals/TCS?limit=",
        "/api/signals/TCS/backtest?commission_bps=",
        "/api/market/multiple?symbols=",
    ],
)
def test_blank_query_values_are_400_not_defaults(auth_client, db, url):
    response = auth_client.get(url)
    assert response.status_code == 400
    assert response.json()["error"]["details"]
