"""Check rules of national identifiers (GB 11643 resident IDs, SSA rules for SSNs)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medspace.linkage.checkdigits import (
    resident_id_check_char,
    ssn_problem,
    upgrade_resident_id,
)


def test_check_character_of_the_standards_examples() -> None:
    assert resident_id_check_char("11010519491231002") == "X"  # GB 11643-1999 example
    assert resident_id_check_char("44052418800101001") == "4"  # its second example


@settings(deadline=None)
@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_check_character_is_iso_7064_mod_11_2(first17: str) -> None:
    # ISO 7064 MOD 11-2 over all 18 positions (X = 10) leaves remainder 1.
    check = resident_id_check_char(first17)
    values = [int(c) for c in first17] + [10 if check == "X" else int(check)]
    assert sum(v * pow(2, 17 - i, 11) for i, v in enumerate(values)) % 11 == 1


@settings(deadline=None)
@given(
    st.text(alphabet="0123456789", min_size=17, max_size=17),
    st.integers(0, 16),
    st.integers(1, 9),
)
def test_any_single_digit_error_changes_the_check_character(
    first17: str, position: int, shift: int
) -> None:
    digit = (int(first17[position]) + shift) % 10
    typo = first17[:position] + str(digit) + first17[position + 1 :]
    assert resident_id_check_char(typo) != resident_id_check_char(first17)


@pytest.mark.parametrize(
    "bad", ["1101051949123100", "1101051949123100A", "１１０１０５１９４９１２３１００２"]
)
def test_check_character_needs_17_ascii_digits(bad: str) -> None:
    with pytest.raises(ValueError, match="17 ASCII digits"):
        resident_id_check_char(bad)


def test_a_legacy_15_digit_id_gets_century_and_check_character() -> None:
    assert upgrade_resident_id("110105491231002") == "11010519491231002X"


@pytest.mark.parametrize(
    ("ssn", "problem"),
    [
        ("123456789", None),  # an ordinary number
        ("899010001", None),  # the highest area issued
        ("000123456", "000, 666 or 900-999"),  # area 000 never issued
        ("666123456", "000, 666 or 900-999"),  # area 666 never issued
        ("912345678", "000, 666 or 900-999"),  # 9xx are ITINs, not SSNs
        ("123006789", "middle two digits"),  # group 00
        ("123450000", "last four digits"),  # serial 0000
        ("12345678", "exactly 9 digits"),  # too short
        ("12345678X", "exactly 9 digits"),  # a letter
    ],
)
def test_ssn_rules(ssn: str, problem: str | None) -> None:
    found = ssn_problem(ssn)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
