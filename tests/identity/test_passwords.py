"""scrypt password hashing: round trip, salting, parameter upgrades, bad stored hashes."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medspace.identity import (
    DEFAULT_PARAMS,
    IdentityError,
    InvalidUserError,
    ScryptParams,
    hash_password,
    needs_rehash,
    verify_password,
)


def test_default_hash_round_trips_and_rejects_a_wrong_password() -> None:
    encoded = hash_password("correct horse battery")
    assert encoded.startswith("$scrypt$ln=15,r=8,p=1$")
    assert verify_password("correct horse battery", encoded)
    assert not verify_password("correct horse batterY", encoded)
    assert not needs_rehash(encoded)


def test_same_password_hashes_differently_because_of_the_salt(fast_params: ScryptParams) -> None:
    a = hash_password("correct horse battery", fast_params)
    b = hash_password("correct horse battery", fast_params)
    assert a != b
    assert verify_password("correct horse battery", a)
    assert verify_password("correct horse battery", b)


def test_parameters_are_recorded_so_they_can_be_raised_later(fast_params: ScryptParams) -> None:
    old = hash_password("correct horse battery", fast_params)
    assert old.startswith("$scrypt$ln=10,r=8,p=1$")
    assert needs_rehash(old, DEFAULT_PARAMS)
    assert not needs_rehash(old, fast_params)
    # An old hash still verifies after the default cost went up.
    assert verify_password("correct horse battery", old)


def test_unicode_passwords_match_regardless_of_normalisation(fast_params: ScryptParams) -> None:
    composed, decomposed = "caf\u00e9-\u5bc6\u7801-2025", "cafe\u0301-\u5bc6\u7801-2025"
    encoded = hash_password(composed, fast_params)
    assert verify_password(decomposed, encoded)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "too short"),  # under the minimum length
        ("x" * 1025, "too long"),  # over the maximum (bounds the KDF input)
    ],
)
def test_weak_or_huge_passwords_are_refused(
    password: str, message: str, fast_params: ScryptParams
) -> None:
    with pytest.raises(InvalidUserError, match=message):
        hash_password(password, fast_params)


@pytest.mark.parametrize(
    "encoded",
    [
        "",  # empty
        "plaintext-password",  # not a hash at all
        "$scrypt$ln=15,r=8,p=1$c2FsdA",  # key part missing
        "$scrypt$ln=99,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5",  # cost out of range
        "$scrypt$ln=10,r=8,p=1$c2FsdA$a2V5",  # salt and key too short
        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$a2V5",  # another scheme
    ],
)
def test_malformed_stored_hash_raises(encoded: str) -> None:
    with pytest.raises(IdentityError, match="reset the user's password"):
        verify_password("correct horse battery", encoded)


def test_out_of_range_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        ScryptParams(log2_n=4)


@settings(max_examples=25, deadline=None)
@given(
    password=st.text(min_size=10, max_size=40),
    other=st.text(min_size=10, max_size=40),
)
def test_any_password_round_trips_and_others_do_not(password: str, other: str) -> None:
    encoded = hash_password(password, ScryptParams(log2_n=10))
    assert verify_password(password, encoded)
    if unicodedata.normalize("NFC", other) != unicodedata.normalize("NFC", password):
        assert not verify_password(other, encoded)
