"""Fixed-point encoding of real vectors into the ring Z_(2^128) for secure aggregation.

Masking works on integers modulo 2^128, so each value x becomes round(x * 2^scale_bits)
modulo 2^128 (two's complement for negatives), and a sum of encodings decodes to the sum
of the values. With the default scale_bits = 40:

- precision: values are rounded to a multiple of 2^-40 (about 9.1e-13) each, so a sum
  of n values is within n * 2^-41 of the exact sum; integers (counts) are exact;
- range: |x| < 2^71 (about 2.4e21) per value. That leaves 16 bits of headroom, so a sum
  of up to 65,536 encoded values stays within [-2^127, 2^127) and cannot wrap around;
  larger values are refused.

Decoding gives floats: exact for every integer sum below 2^53 (counts round-trip
exactly), otherwise correctly rounded from the exact ring value.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

from medspace.analytics.secagg_errors import FixedPointError

RING_BITS = 128
RING = 1 << RING_BITS
HEADROOM_BITS = 16
DEFAULT_SCALE_BITS = 40
_HALF = 1 << (RING_BITS - 1)


def max_magnitude(scale_bits: int = DEFAULT_SCALE_BITS) -> int:
    """The bound on |value| for `encode_vector` at this scale (exclusive): 2^(111 - scale_bits)."""
    _check_scale(scale_bits)
    return 1 << (RING_BITS - 1 - HEADROOM_BITS - scale_bits)


def _check_scale(scale_bits: int) -> None:
    if isinstance(scale_bits, bool) or not isinstance(scale_bits, int):
        raise FixedPointError("scale_bits must be an integer between 0 and 64")
    if not 0 <= scale_bits <= 64:
        raise FixedPointError("scale_bits must be between 0 and 64")


def encode_vector(
    values: Iterable[float | int], *, scale_bits: int = DEFAULT_SCALE_BITS
) -> list[int]:
    """Encode each value as round(value * 2^scale_bits) mod 2^128.

    Integers (Python or numpy) are encoded exactly; floats are rounded to the nearest
    multiple of 2^-scale_bits (ties to even). Raises `FixedPointError` for NaN, infinity,
    non-numbers, or |value| >= `max_magnitude(scale_bits)`, naming the position only.
    """
    _check_scale(scale_bits)
    limit = max_magnitude(scale_bits)
    encoded: list[int] = []
    for position, value in enumerate(values):
        if type(value) is float and -limit < value < limit:  # the common case, fast
            encoded.append(round(math.ldexp(value, scale_bits)) % RING)
            continue
        if type(value) is int and -limit < value < limit:
            encoded.append((value << scale_bits) % RING)
            continue
        if isinstance(value, numbers.Integral):
            whole = int(value)
            if abs(whole) >= limit:
                raise FixedPointError(_range_message(position, scale_bits))
            scaled = whole << scale_bits
        elif isinstance(value, numbers.Real):
            real = float(value)
            if not math.isfinite(real):
                raise FixedPointError(f"value at position {position} is not a finite number")
            if abs(real) >= limit:
                raise FixedPointError(_range_message(position, scale_bits))
            scaled = round(math.ldexp(real, scale_bits))  # exact scaling by a power of two
        else:
            raise FixedPointError(f"value at position {position} is not a number")
        encoded.append(scaled % RING)
    return encoded


def _range_message(position: int, scale_bits: int) -> str:
    return (
        f"value at position {position} is out of range for secure aggregation: "
        f"|value| must be below 2^{RING_BITS - 1 - HEADROOM_BITS - scale_bits} at "
        f"scale_bits={scale_bits}; rescale the statistic or lower scale_bits"
    )


def decode_vector(ints: Sequence[int], *, scale_bits: int = DEFAULT_SCALE_BITS) -> list[float]:
    """Decode ring elements (e.g. a secure-aggregation total) back to floats.

    Reads each element as a two's-complement 128-bit integer and divides by
    2^scale_bits with correct rounding. Raises `FixedPointError` for an element outside
    [0, 2^128).
    """
    _check_scale(scale_bits)
    divisor = 1 << scale_bits
    decoded: list[float] = []
    for position, element in enumerate(ints):
        if isinstance(element, bool) or not isinstance(element, int) or not 0 <= element < RING:
            raise FixedPointError(f"element at position {position} is not in Z_(2^128)")
        signed = element - RING if element >= _HALF else element
        decoded.append(signed / divisor)  # int / int is correctly rounded in Python
    return decoded
