"""Fixed-point encoding into Z_(2^128) and Shamir sharing: the arithmetic secure
aggregation rests on."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medspace.analytics import shamir
from medspace.analytics.fixedpoint import RING
from medspace.analytics.secagg import (
    FixedPointError,
    decode_vector,
    encode_vector,
    max_magnitude,
)
from medspace.analytics.secagg_ring import add, from_ints, sub, to_ints

LIMIT = max_magnitude()
finite = st.floats(min_value=-1e15, max_value=1e15, allow_nan=False, allow_infinity=False)
counts = st.integers(min_value=-(2**53), max_value=2**53)


@settings(deadline=None)  # never fail on a busy machine
@given(st.lists(counts, max_size=20))
def test_integers_round_trip_exactly(values: list[int]) -> None:
    assert decode_vector(encode_vector(values)) == [float(v) for v in values]


@settings(deadline=None)  # never fail on a busy machine
@given(st.lists(finite, max_size=20))
def test_floats_round_trip_within_half_a_step(values: list[float]) -> None:
    step = 2.0**-40
    for got, want in zip(decode_vector(encode_vector(values)), values, strict=True):
        assert abs(got - want) <= step / 2 + abs(want) * 2**-52


@settings(deadline=None)  # never fail on a busy machine
@given(st.lists(st.lists(finite, min_size=3, max_size=3), min_size=1, max_size=8))
def test_the_sum_of_encodings_decodes_to_the_sum(vectors: list[list[float]]) -> None:
    total = [0, 0, 0]
    for v in vectors:
        total = [(a + b) % RING for a, b in zip(total, encode_vector(v), strict=True)]
    for i, got in enumerate(decode_vector(total)):
        want = math.fsum(v[i] for v in vectors)
        assert abs(got - want) <= len(vectors) * 2.0**-41 + abs(want) * 2**-52


def test_negatives_use_twos_complement() -> None:
    assert encode_vector([-1], scale_bits=0) == [RING - 1]
    assert encode_vector([-0.5], scale_bits=1) == [RING - 1]
    assert decode_vector([RING - 1], scale_bits=0) == [-1.0]


def test_the_extremes_of_the_range_survive_65536_additions() -> None:
    top = encode_vector([LIMIT - 1])[0]
    assert decode_vector([top * 2**16 % RING]) == [float((LIMIT - 1) * 2**16)]
    bottom = encode_vector([-(LIMIT - 1)])[0]
    assert decode_vector([bottom * 2**16 % RING]) == [float(-(LIMIT - 1) * 2**16)]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "not a finite number"),
        (float("inf"), "not a finite number"),
        (LIMIT, "out of range"),  # an integer just past the range (the bound is exclusive)
        (-float(LIMIT) * 2, "out of range"),  # a float past the range
        ("3", "not a number"),  # text is not a value
    ],
)
def test_values_that_cannot_be_encoded_are_refused(value: object, message: str) -> None:
    with pytest.raises(FixedPointError, match=message):
        encode_vector([0, value])  # type: ignore[list-item]


def test_a_bad_scale_is_refused() -> None:
    with pytest.raises(FixedPointError, match="scale_bits"):
        encode_vector([1], scale_bits=65)
    with pytest.raises(FixedPointError, match="not in Z"):
        decode_vector([RING])


@settings(deadline=None)  # never fail on a busy machine
@given(st.lists(st.integers(min_value=0, max_value=RING - 1), min_size=1, max_size=10), st.data())
def test_lane_arithmetic_matches_python_integers(a: list[int], data: st.DataObject) -> None:
    b = data.draw(
        st.lists(st.integers(min_value=0, max_value=RING - 1), min_size=len(a), max_size=len(a))
    )
    assert to_ints(add(from_ints(a), from_ints(b))) == [
        (x + y) % RING for x, y in zip(a, b, strict=True)
    ]
    assert to_ints(sub(from_ints(a), from_ints(b))) == [
        (x - y) % RING for x, y in zip(a, b, strict=True)
    ]


@settings(deadline=None)  # never fail on a busy machine
@given(
    st.integers(min_value=0, max_value=2**256 - 1),
    st.integers(min_value=2, max_value=7),
    st.data(),
)
def test_any_threshold_shares_rebuild_the_secret(secret: int, n: int, data: st.DataObject) -> None:
    t = data.draw(st.integers(min_value=1, max_value=n))
    shares = shamir.split(secret, list(range(1, n + 1)), t)
    subset = data.draw(
        st.lists(st.sampled_from(sorted(shares)), min_size=t, max_size=t, unique=True)
    )
    assert shamir.interpolate({x: shares[x] for x in subset}) == secret


def test_fewer_shares_than_the_threshold_fit_any_secret() -> None:
    shares = shamir.split(42, [1, 2, 3], 3)
    two = {1: shares[1], 2: shares[2]}
    for candidate in (0, 42, 2**255):  # a third point can be chosen to fit each candidate
        fitted = {**two, 0: candidate}
        assert shamir.interpolate(fitted, 0) == candidate


def test_find_consistent_names_the_wrong_share() -> None:
    rng = random.Random(5)
    secret = rng.getrandbits(256)
    shares = shamir.split(secret, [1, 2, 3, 4, 5], 3)
    shares[2] = (shares[2] + 1) % shamir.PRIME
    found = shamir.find_consistent(shares, 3, lambda s: s == secret)
    assert found == (secret, {2})
    shares[4] = 7
    assert shamir.find_consistent(shares, 3, lambda s: s == secret) == (secret, {2, 4})
    assert shamir.find_consistent(shares, 3, lambda s: s == secret + 1) is None


def test_a_share_outside_the_field_is_refused() -> None:
    with pytest.raises(shamir.ShareError):
        shamir.share_from_bytes(shamir.PRIME.to_bytes(66, "big"))
    with pytest.raises(shamir.ShareError):
        shamir.share_from_bytes(b"\x00" * 65)
