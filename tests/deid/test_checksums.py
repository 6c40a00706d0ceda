"""Check digits: GB 11643 resident IDs, Luhn, SSN issuance rules."""

from __future__ import annotations

import pytest

from medspace.deid.checksums import (
    is_old_resident_id,
    is_valid_resident_id,
    looks_like_resident_id,
    luhn_ok,
    resident_id_check_char,
    ssn_plausible,
)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("11010519491231002X", True),  # the GB 11643 worked example
        ("11010519491231002x", True),  # lower-case x check character
        ("110105 19491231 002X", True),  # split 6-8-4 by spaces
        ("110-105-1949-1231-002X", True),  # split by dashes
        ("110105194912310021", False),  # wrong check character
        ("11010519491331002X", False),  # month 13
        ("1101051949123100", False),  # too short
        ("A1010519491231002X", False),  # a letter in the body
    ],
)
def test_resident_id_validation(value: str, valid: bool) -> None:
    assert is_valid_resident_id(value) is valid


def test_check_char_of_known_ids() -> None:
    assert resident_id_check_char("11010519491231002") == "X"
    assert resident_id_check_char("33010619800315531") == "2"


def test_a_typo_in_the_check_digit_still_looks_like_an_id() -> None:
    assert looks_like_resident_id("110105194912310021")
    assert not looks_like_resident_id("010105194912310021")  # no region starts with 0


def test_first_generation_fifteen_digit_id() -> None:
    assert is_old_resident_id("110105491231002")
    assert not is_old_resident_id("110105491331002")


@pytest.mark.parametrize(
    ("digits", "ok"),
    [
        ("4111111111111111", True),  # the usual Visa test number
        ("4111111111111112", False),
        ("79927398713", True),  # ISO/IEC 7812 example
    ],
)
def test_luhn(digits: str, ok: bool) -> None:
    assert luhn_ok(digits) is ok


@pytest.mark.parametrize(
    ("ssn", "ok"),
    [
        (("123", "45", "6789"), True),
        (("000", "45", "6789"), False),  # area 000 never issued
        (("666", "45", "6789"), False),  # area 666 never issued
        (("912", "45", "6789"), False),  # 9xx are ITINs
        (("123", "00", "6789"), False),  # group 00
        (("123", "45", "0000"), False),  # serial 0000
    ],
)
def test_ssn_issuance_rules(ssn: tuple[str, str, str], ok: bool) -> None:
    assert ssn_plausible(*ssn) is ok
