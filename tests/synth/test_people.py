"""Synthetic people: identifiers, phones, addresses, noise."""

from __future__ import annotations

import re
from random import Random

import pytest

from medspace.synth import is_valid_resident_id, resident_id_birth_date
from medspace.synth.linkage import apply_noise
from medspace.synth.people import EN, ZH, make_person, name_typo, new_address, pools

SSN = re.compile(r"^(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}$")
US_PHONE = re.compile(r"^[2-9]\d{2}-[2-9]\d{2}-\d{4}$")
CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
ZIP = re.compile(r"^\d{5}$")


@pytest.fixture(scope="module")
def chinese() -> list:
    rng = Random(1)
    return [make_person(rng, ZH, pools(ZH, 0)) for _ in range(600)]


@pytest.fixture(scope="module")
def american() -> list:
    rng = Random(2)
    return [make_person(rng, EN, pools(EN, 0)) for _ in range(600)]


def test_chinese_ids_are_valid_and_match_birth_date_and_sex(chinese: list) -> None:
    with_id = [p for p in chinese if p.identity.national_id]
    assert len(with_id) > 0.95 * len(chinese)
    for person in with_id:
        resident_id = person.identity.national_id
        assert is_valid_resident_id(resident_id)
        assert resident_id_birth_date(resident_id) == person.birth_date
        odd = int(resident_id[16]) % 2 == 1
        assert odd == (person.sex == "male")
        assert person.identity.national_id_system == "CN-RID"


def test_chinese_contact_details_look_real(chinese: list) -> None:
    for person in chinese:
        identity = person.identity
        if identity.phone:
            assert CN_MOBILE.match(identity.phone)
        address = identity.address
        assert address is not None and address.country == "CN"
        assert address.state and address.city and address.district
        assert address.line and "号" in address.line
        assert address.postal_code and re.fullmatch(r"\d{6}", address.postal_code)
        assert person.full_name == (identity.family_name or "") + (identity.given_name or "")


def test_american_identifiers_follow_ssa_rules(american: list) -> None:
    for person in american:
        identity = person.identity
        if identity.national_id:
            assert SSN.match(identity.national_id), "SSN outside the SSA's issued ranges"
            assert identity.national_id_system == "US-SSN"
        if identity.phone:
            assert US_PHONE.match(identity.phone)
        address = identity.address
        assert address is not None and address.country == "US"
        assert address.postal_code and ZIP.match(address.postal_code)
        assert address.state and len(address.state) == 2
        assert person.full_name == f"{identity.given_name} {identity.family_name}"


def test_ages_cover_adults_and_some_over_89(chinese: list, american: list) -> None:
    from medspace.synth.people import AGE_REFERENCE_DATE, age_on

    ages = [age_on(p.birth_date, AGE_REFERENCE_DATE) for p in chinese + american]
    assert min(ages) >= 18
    assert max(ages) <= 101
    assert any(age > 89 for age in ages)


def test_same_seed_same_person() -> None:
    first = make_person(Random(5), ZH, pools(ZH, 0))
    again = make_person(Random(5), ZH, pools(ZH, 0))
    assert first == again


@pytest.mark.parametrize("locale", [ZH, EN])
def test_name_typo_changes_exactly_the_reported_field(locale: str) -> None:
    rng = Random(3)
    for _ in range(200):
        person = make_person(rng, locale, pools(locale, 0))
        typo, field = name_typo(rng, person)
        assert getattr(typo.identity, field) != getattr(person.identity, field)
        others = {"family_name", "given_name"} - {field}
        for other in others:
            assert getattr(typo.identity, other) == getattr(person.identity, other)
        assert typo.birth_date == person.birth_date and typo.sex == person.sex


@pytest.mark.parametrize("locale", [ZH, EN])
def test_new_address_differs(locale: str) -> None:
    rng = Random(4)
    for _ in range(100):
        person = make_person(rng, locale, pools(locale, 0))
        moved = new_address(rng, person, pools(locale, 0))
        assert moved.identity.address != person.identity.address
        assert moved.identity.national_id == person.identity.national_id


@pytest.mark.parametrize("kind", ["missing_id", "missing_phone", "new_address", "name_typo"])
def test_applied_noise_always_changes_something(kind: str) -> None:
    rng = Random(6)
    for _ in range(100):
        person = make_person(rng, ZH, pools(ZH, 0))
        noisy, applied, field = apply_noise(rng, person, kind, pools(ZH, 0))
        before = getattr(person.identity, field)
        after = getattr(noisy.identity, field)
        assert before != after
        if applied in ("missing_id", "missing_phone"):
            assert after is None and applied == kind
