"""Vectors over Z_(2^128) as numpy arrays of (low, high) 64-bit words.

Masks are long: a node adds one pseudo-random vector per peer plus its own. Python ints
would cost a few hundred nanoseconds per element per mask; two uint64 words with an
explicit carry keep the work in numpy. The byte form (16 bytes little-endian per
element) is the wire form of masked inputs and the output form of the PRG.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from medspace.analytics.secagg_errors import SecAggError

ELEMENT_BYTES = 16
Lanes = npt.NDArray[np.uint64]
_WORD = np.dtype("<u8")


def from_bytes(data: bytes, length: int) -> Lanes:
    """Parse `length` 16-byte little-endian elements; raise `SecAggError` on a size mismatch."""
    if len(data) != length * ELEMENT_BYTES:
        raise SecAggError(
            f"expected {length} elements ({length * ELEMENT_BYTES} bytes), got {len(data)} bytes"
        )
    return np.frombuffer(data, dtype=_WORD).reshape(length, 2).astype(np.uint64)


def to_bytes(lanes: Lanes) -> bytes:
    """The wire form: 16 bytes little-endian per element."""
    return np.ascontiguousarray(lanes, dtype=_WORD).tobytes()


def from_ints(values: Sequence[int]) -> Lanes:
    """Ring elements (Python ints in [0, 2^128)) as lanes; `SecAggError` for anything else."""
    try:
        data = b"".join(
            v.to_bytes(ELEMENT_BYTES, "little") for v in values if not isinstance(v, bool)
        )
    except (AttributeError, OverflowError, TypeError):
        raise SecAggError(
            "a vector to mask must hold integers in [0, 2^128): encode it with encode_vector"
        ) from None
    if len(data) != len(values) * ELEMENT_BYTES:
        raise SecAggError("a vector to mask must hold integers, not booleans")
    return from_bytes(data, len(values))


def to_ints(lanes: Lanes) -> list[int]:
    """Lanes back to Python ints in [0, 2^128)."""
    data = to_bytes(lanes)
    return [
        int.from_bytes(data[i : i + ELEMENT_BYTES], "little")
        for i in range(0, len(data), ELEMENT_BYTES)
    ]


def zeros(length: int) -> Lanes:
    """The zero vector."""
    return np.zeros((length, 2), dtype=np.uint64)


def add(a: Lanes, b: Lanes) -> Lanes:
    """a + b mod 2^128, element-wise (uint64 arithmetic wraps; the carry is explicit)."""
    low = a[:, 0] + b[:, 0]
    carry = (low < a[:, 0]).astype(np.uint64)
    high = a[:, 1] + b[:, 1] + carry
    return np.stack([low, high], axis=1)


def sub(a: Lanes, b: Lanes) -> Lanes:
    """a - b mod 2^128, element-wise."""
    low = a[:, 0] - b[:, 0]
    borrow = (a[:, 0] < b[:, 0]).astype(np.uint64)
    high = a[:, 1] - b[:, 1] - borrow
    return np.stack([low, high], axis=1)
