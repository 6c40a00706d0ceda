"""Canonical JSON per RFC 8785 (JSON Canonicalization Scheme) for the values a ledger holds.

Allowed values: `None`, `bool`, `int`, `str`, lists of allowed values and dicts with `str`
keys. Floats are refused rather than serialised with ECMAScript number rules: the ledger
has no use for them, and refusing removes a whole class of cross-language mismatches
(record a float as a string or a scaled integer). Integers must lie in the IEEE-754 safe
range |n| <= 2**53 - 1 (RFC 8785 §3.2.2.3: other integers do not survive a JSON round trip
in every language); inside that range ECMAScript prints them exactly as Python does.

Output rules (RFC 8785 §3.2): no whitespace; object members sorted by their keys compared
as arrays of UTF-16 code units (§3.2.3); strings escaped as ECMAScript `JSON.stringify`
does: `\\"`, `\\\\`, `\\b \\f \\n \\r \\t`, other controls below U+0020 as `\\u00xx` with
lowercase hex, everything else literal; output encoded as UTF-8. Lone surrogates are
refused (§3.2.2.2).
"""

from __future__ import annotations

import json
from typing import Any, TypeAlias

from medspace.ledger.errors import CanonicalError

JSONValue: TypeAlias = bool | int | str | list[Any] | dict[str, Any] | None

MAX_SAFE_INTEGER = 2**53 - 1

# The C string encoder of the standard library escapes exactly the set RFC 8785 requires
# (quote, backslash, the five short forms, other controls as lowercase \u00xx) when
# ASCII-only output is not asked for.
_encode_string = json.encoder.encode_basestring


def _utf16_key(key: str) -> bytes:
    # Big-endian UTF-16 bytes compare exactly like sequences of UTF-16 code units.
    return key.encode("utf-16-be", "surrogatepass")


def _write(value: object, out: list[str], path: str) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_encode_string(value))
    elif isinstance(value, int):
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            out.append(str(int(value)))
        else:
            raise CanonicalError(
                f"integer at {path} is outside ±(2**53 - 1); store it as a string instead"
            )
    elif isinstance(value, float):
        raise CanonicalError(
            f"number at {path} is a float; ledger JSON allows integers only "
            "(store a scaled integer or a string)"
        )
    elif isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise CanonicalError(f"object at {path} has a non-string key; use string keys")
        out.append("{")
        for n, key in enumerate(sorted(value, key=_utf16_key)):
            if n:
                out.append(",")
            out.append(_encode_string(key))
            out.append(":")
            _write(value[key], out, f"{path}.{key}" if len(path) < 200 else path)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for n, item in enumerate(value):
            if n:
                out.append(",")
            _write(item, out, f"{path}[{n}]")
        out.append("]")
    else:
        raise CanonicalError(
            f"value at {path} has type {type(value).__name__}; ledger JSON allows null, "
            "bool, int, str, list and object"
        )


def _check(value: object, path: str) -> bool:
    """Walk `value` checking the profile; return False when some key holds a character
    above U+FFFF (the only case where UTF-16 and code point orders differ)."""
    if value is None or value is True or value is False or isinstance(value, str):
        return True
    if isinstance(value, int):
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return True
        raise CanonicalError(
            f"integer at {path} is outside ±(2**53 - 1); store it as a string instead"
        )
    if isinstance(value, dict):
        plain = True
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalError(f"object at {path} has a non-string key; use string keys")
            if not key.isascii() and any(ord(c) > 0xFFFF for c in key):
                plain = False
            plain = _check(item, path if len(path) > 200 else f"{path}.{key}") and plain
        return plain
    if isinstance(value, list | tuple):
        plain = True
        for n, item in enumerate(value):
            plain = _check(item, f"{path}[{n}]") and plain
        return plain
    if isinstance(value, float):
        raise CanonicalError(
            f"number at {path} is a float; ledger JSON allows integers only "
            "(store a scaled integer or a string)"
        )
    raise CanonicalError(
        f"value at {path} has type {type(value).__name__}; ledger JSON allows null, "
        "bool, int, str, list and object"
    )


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalError(
            "a string contains a lone surrogate, which is not valid Unicode (RFC 8785 "
            "§3.2.2.2); fix the producer's text encoding"
        ) from None


def _slow_bytes(value: object) -> bytes:
    """The reference serialiser (explicit UTF-16 key order); used when a key holds a
    character above U+FFFF, and by tests to cross-check the fast path."""
    out: list[str] = []
    _write(value, out, "$")
    return _encode("".join(out))


def canonical_bytes(value: object, *, limit: int | None = None) -> bytes:
    """Return the RFC 8785 canonical UTF-8 encoding of `value`.

    Raises `CanonicalError` for floats, unsafe integers, non-string keys, lone surrogates,
    unsupported types, or (when `limit` is given) output longer than `limit` bytes.
    """
    if _check(value, "$"):  # noqa: SIM108 - the comment below needs room
        # Every key is in the BMP, where code point order is UTF-16 order, and the value is
        # inside the profile: the C encoder's sorted, unescaped output is exactly RFC 8785.
        data = _encode(_dumps(value))
    else:
        data = _slow_bytes(value)
    if limit is not None and len(data) > limit:
        raise CanonicalError(
            f"canonical JSON is {len(data)} bytes, over the limit of {limit}; "
            "store large content elsewhere and record its hash"
        )
    return data


_dumps = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
).encode


def _refuse_float(text: str) -> object:
    raise CanonicalError("JSON holds a non-integer number; ledger JSON allows integers only")


def _refuse_constant(text: str) -> object:
    raise CanonicalError("JSON holds NaN or Infinity, which JSON does not allow")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in pairs:
        if key in result:
            raise CanonicalError("JSON object has a duplicate key; each key may appear once")
        result[key] = item
    return result


def parse_json(data: bytes) -> JSONValue:
    """Parse UTF-8 JSON under the ledger's profile (no floats, NaN or duplicate keys)
    without checking that it is canonical: for callers that rebuild the canonical bytes
    from what they parsed and compare them with `data` (one encoding pass, not two).
    Raises `CanonicalError`."""
    try:
        return json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_unique_keys,
            parse_float=_refuse_float,
            parse_constant=_refuse_constant,
        )
    except UnicodeDecodeError:
        raise CanonicalError("JSON bytes are not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise CanonicalError(f"not valid JSON ({exc.msg} at byte {exc.pos})") from None


def parse_canonical(data: bytes, *, limit: int | None = None) -> JSONValue:
    """Parse bytes that must already be canonical JSON; return the value.

    Raises `CanonicalError` if the bytes are not UTF-8 JSON, hold floats, duplicate keys or
    NaN, exceed `limit`, or are valid JSON but not in canonical form.
    """
    if limit is not None and len(data) > limit:
        raise CanonicalError(f"JSON is {len(data)} bytes, over the limit of {limit}")
    try:
        value = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_unique_keys,
            parse_float=_refuse_float,
            parse_constant=_refuse_constant,
        )
    except UnicodeDecodeError:
        raise CanonicalError("JSON bytes are not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise CanonicalError(f"not valid JSON ({exc.msg} at byte {exc.pos})") from None
    if canonical_bytes(value) != data:
        raise CanonicalError("JSON is valid but not canonical (RFC 8785); re-encode it")
    return value
