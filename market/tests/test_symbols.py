import pytest

from market.symbols import InvalidSymbol, parse_symbol


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("RELIANCE", "RELIANCE.NS"),
        ("  reliance \n", "RELIANCE.NS"),
        ("RELIANCE.NS", "RELIANCE.NS"),
        ("tcs.bo", "TCS.BO"),
        ("M&M.NS", "M&M.NS"),
        ("m&m", "M&M.NS"),
        ("BAJAJ-AUTO", "BAJAJ-AUTO.NS"),
        ("^NSEI", "^NSEI"),
        ("^nsebank", "^NSEBANK"),
        ("500325.BO", "500325.BO"),
    ],
)
def test_valid_symbols_are_normalised(raw, expected):
    assert parse_symbol(raw) == expected


def test_default_suffix_is_configurable():
    assert parse_symbol("RELIANCE", default_suffix=".BO") == "RELIANCE.BO"
    assert parse_symbol("RELIANCE", default_suffix="") == "RELIANCE"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "../etc/passwd",
        "..",
        ".",
        ".NS",
        "RELIANCE.",
        "RELIANCE..NS",
        "https://evil.example/x",
        "RELIANCE NS",
        "A" * 200,
        "RELI/ANCE",
        "REL\\IANCE",
        "NSEI^",
        "^^NSEI",
        "^",
        "---",
        "&",
        "TCS;DROP",
        "TCS\x00.NS",
        "ÜBER",
    ],
)
def test_invalid_symbols_are_rejected(raw):
    with pytest.raises(InvalidSymbol):
        parse_symbol(raw)


def test_invalid_symbol_is_a_value_error_with_a_clear_short_message():
    with pytest.raises(ValueError, match="Invalid symbol") as caught:
        parse_symbol("X" * 200)
    assert len(str(caught.value)) < 200


def test_name_too_long_once_suffixed_is_rejected():
    assert parse_symbol("A" * 17) == "A" * 17 + ".NS"
    with pytest.raises(InvalidSymbol, match="too long"):
        parse_symbol("A" * 18)


def test_non_text_is_rejected():
    with pytest.raises(InvalidSymbol):
        parse_symbol(None)  # type: ignore[arg-type]


def test_bad_default_suffix_is_a_programming_error():
    with pytest.raises(ValueError, match="suffix"):
        parse_symbol("RELIANCE", default_suffix="/../")
