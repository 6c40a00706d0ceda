"""GB 11643 resident-ID helpers."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medspace.synth import (
    SynthError,
    is_valid_resident_id,
    make_resident_id,
    resident_id_birth_date,
    resident_id_check_digit,
)

seventeen_digits = st.text(alphabet="0123456789", min_size=17, max_size=17)
birth_dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31))


@pytest.mark.parametrize(
    ("resident_id", "valid"),
    [
        ("11010519491231002X", True),  # the example printed in GB 11643-1999
        ("440524188001010014", True),  # the standard's second example, born 1880
        ("11010519491231002x", True),  # lower-case check character is accepted
        ("110105194912310021", False),  # wrong check character
        ("11010519491331002X", False),  # month 13: not a date, check digit recomputed below
        ("1101051949123100", False),  # too short
        ("11010519491231002XX", False),  # too long
        ("1101051949123100AX", False),  # a letter among the first 17
        ("", False),
    ],
)
def test_resident_id_validity_table(resident_id: str, valid: bool) -> None:
    assert is_valid_resident_id(resident_id) is valid


def test_bad_birth_date_fails_even_with_right_check_character() -> None:
    first17 = "11010519491331002"
    assert not is_valid_resident_id(first17 + resident_id_check_digit(first17))


def test_check_digit_of_the_standard_example() -> None:
    assert resident_id_check_digit("11010519491231002") == "X"


@pytest.mark.parametrize(
    "bad", ["1101051949123100", "1101051949123100A", "１１０１０５１９４９１２３１００２"]
)
def test_check_digit_refuses_anything_but_17_ascii_digits(bad: str) -> None:
    with pytest.raises(SynthError, match="17 ASCII digits"):
        resident_id_check_digit(bad)


@given(first17=seventeen_digits)
def test_check_digit_is_one_of_the_eleven_characters(first17: str) -> None:
    assert resident_id_check_digit(first17) in "0123456789X"


@given(
    birth=birth_dates, sequence=st.integers(0, 999), division=st.sampled_from(["110105", "440305"])
)
def test_made_ids_are_valid_and_carry_the_birth_date(
    birth: date, sequence: int, division: str
) -> None:
    resident_id = make_resident_id(division, birth, sequence)
    assert is_valid_resident_id(resident_id)
    assert resident_id_birth_date(resident_id) == birth
    assert resident_id.startswith(division)
    assert resident_id[14:17] == f"{sequence:03d}"


@given(
    birth=birth_dates,
    sequence=st.integers(0, 999),
    position=st.integers(0, 16),
    delta=st.integers(1, 9),
)
def test_any_single_digit_error_is_detected(
    birth: date, sequence: int, position: int, delta: int
) -> None:
    resident_id = make_resident_id("320102", birth, sequence)
    digit = (int(resident_id[position]) + delta) % 10
    typo = resident_id[:position] + str(digit) + resident_id[position + 1 :]
    assert resident_id_check_digit(typo[:17]) != typo[17]


@given(birth=birth_dates, sequence=st.integers(0, 999), position=st.integers(0, 15))
def test_swapping_two_different_neighbours_is_detected(
    birth: date, sequence: int, position: int
) -> None:
    resident_id = make_resident_id("510107", birth, sequence)
    a, b = resident_id[position], resident_id[position + 1]
    if a == b:
        return
    swapped = resident_id[:position] + b + a + resident_id[position + 2 :]
    assert resident_id_check_digit(swapped[:17]) != swapped[17]


@pytest.mark.parametrize(
    ("division", "sequence", "message"),
    [
        ("11010", 1, "division code"),  # five digits
        ("11010A", 1, "division code"),
        ("110105", 1000, "sequence number"),
        ("110105", -1, "sequence number"),
    ],
)
def test_make_resident_id_rejects_bad_parts(division: str, sequence: int, message: str) -> None:
    with pytest.raises(SynthError, match=message):
        make_resident_id(division, date(1990, 1, 1), sequence)
