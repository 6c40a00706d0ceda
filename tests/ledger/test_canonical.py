"""RFC 8785 canonical JSON: ordering, escapes, numbers and limits."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medspace.ledger.canonical import (
    MAX_SAFE_INTEGER,
    _slow_bytes,
    canonical_bytes,
    parse_canonical,
)
from medspace.ledger.errors import CanonicalError


def test_keys_sort_by_utf16_code_units_as_in_rfc_8785_section_3_2_3() -> None:
    # The RFC's own sorting example: U+1F600 (surrogates D83D DE00) sorts before U+FB33,
    # although its code point is larger.
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    keys = list(json.loads(canonical_bytes(value)))
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": [True, False, None]}, b'{"a":[true,false,null],"b":1}'),  # order, no spaces
        (
            '\u20ac$\u000f\nA\'B"\\\\"/',
            b'"\xe2\x82\xac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"',
        ),  # RFC 8785 §3.2.2.2
        ("\b\f\t\r\x00\x1f", b'"\\b\\f\\t\\r\\u0000\\u001f"'),  # short forms, lowercase hex
        ("\x7f\u2028\u00e9\u4e2d", '"\x7f\u2028\u00e9\u4e2d"'.encode()),  # no escape above controls
        ("/", b'"/"'),  # solidus is not escaped
        (-MAX_SAFE_INTEGER, b"-9007199254740991"),  # safe integer bounds
        (0, b"0"),
        ({}, b"{}"),
        ([], b"[]"),
        ({"nested": {"z": {}, "y": []}}, b'{"nested":{"y":[],"z":{}}}'),
    ],
)
def test_values_serialise_canonically(value: object, expected: bytes) -> None:
    assert canonical_bytes(value) == expected


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (1.5, "float"),  # floats are refused, not rounded
        ({"a": 1.0}, "float"),
        (MAX_SAFE_INTEGER + 1, "outside"),  # not exactly representable as a double
        ({1: "x"}, "non-string key"),
        ("\ud800", "lone surrogate"),  # not Unicode
        ({"\udc00": 1}, "lone surrogate"),
        (b"bytes", "type bytes"),
        ({"s": {1, 2}}, "type set"),
    ],
)
def test_values_outside_the_profile_are_refused(value: object, match: str) -> None:
    with pytest.raises(CanonicalError, match=match):
        canonical_bytes(value)


def test_size_limit_is_enforced_with_a_clear_error() -> None:
    assert canonical_bytes("x" * 10, limit=12) == b'"' + b"x" * 10 + b'"'
    with pytest.raises(CanonicalError, match="13 bytes, over the limit of 12"):
        canonical_bytes("x" * 11, limit=12)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b'{"b":1,"a":2}', "not canonical"),  # wrong order
        (b'{"a": 1}', "not canonical"),  # whitespace
        (b'"\\u00e9"', "not canonical"),  # needless escape
        (b'{"a":1,"a":1}', "duplicate key"),
        (b"1.0", "integers only"),
        (b"NaN", "NaN"),
        (b"\xff", "UTF-8"),
        (b'{"a":', "not valid JSON"),
    ],
)
def test_parsing_refuses_non_canonical_bytes(data: bytes, match: str) -> None:
    with pytest.raises(CanonicalError, match=match):
        parse_canonical(data)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_json)
def test_fast_path_and_reference_serialiser_agree(value: object) -> None:
    # canonical_bytes uses the C encoder when no key is outside the BMP; the explicit
    # UTF-16-ordering writer is the reference.
    assert canonical_bytes(value) == _slow_bytes(value)


@given(_json)
def test_canonical_bytes_round_trip(value: object) -> None:
    data = canonical_bytes(value)
    assert parse_canonical(data) == value
    assert canonical_bytes(json.loads(data)) == data


@given(_json)
def test_agrees_with_the_standard_library_where_orderings_coincide(value: object) -> None:
    # For keys without characters above U+FFFF, UTF-16 and code point order are the same,
    # so the standard library's sorted, unescaped output must be byte-identical.
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if any(ord(c) > 0xFFFF for c in text):
        return
    assert canonical_bytes(value) == text.encode("utf-8")
