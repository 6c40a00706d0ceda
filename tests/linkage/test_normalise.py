"""Normalisation: the same person written differently gives the same linkage fields."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medspace.linkage import LinkageInputError
from medspace.linkage.normalise import (
    NationalId,
    normalise_birth_date,
    normalise_name,
    normalise_national_id,
    normalise_sex,
)
from medspace.synth import make_resident_id

latin_words = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12), min_size=1, max_size=3
)
han_names = st.text(alphabet="张王李赵伟芳丽军建华明秀英", min_size=2, max_size=4)
birth_dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2020, 12, 31))


@settings(deadline=None)
@given(birth_dates, st.integers(0, 999))
def test_resident_ids_are_cleaned_of_spaces_case_and_full_width(born: date, seq: int) -> None:
    rid = make_resident_id("110105", born, seq)
    expected = NationalId("CN-RID", rid)
    assert normalise_national_id(rid, "CN-RID") == expected
    assert normalise_national_id(rid.lower(), "cn-rid") == expected
    spaced = f" {rid[:6]} {rid[6:14]} {rid[14:]} "
    assert normalise_national_id(spaced, "https://medspace.example/fhir/sid/cn-rid") == expected
    full_width = rid.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
    assert normalise_national_id(full_width, "CN-RID") == expected


@settings(deadline=None)
@given(birth_dates, st.integers(0, 999), st.integers(0, 16), st.integers(1, 9))
def test_a_mistyped_resident_id_is_refused_without_echoing_it(
    born: date, seq: int, position: int, shift: int
) -> None:
    rid = make_resident_id("110105", born, seq)
    typo = rid[:position] + str((int(rid[position]) + shift) % 10) + rid[position + 1 :]
    with pytest.raises(LinkageInputError) as caught:
        normalise_national_id(typo, "CN-RID")
    message = str(caught.value)
    assert rid not in message and typo not in message and typo[:6] not in message
    assert "check digit is wrong" in message or "birth-date part" in message


def test_wrong_check_digit_message() -> None:
    with pytest.raises(LinkageInputError, match="check digit is wrong"):
        normalise_national_id("110105194912310021", "CN-RID")


@pytest.mark.parametrize(
    ("value", "system", "expected"),
    [
        ("123-45-6789", "US-SSN", NationalId("US-SSN", "123456789")),  # hyphens dropped
        ("123 45 6789", "ssn", NationalId("US-SSN", "123456789")),  # alias of the system
        ("110105491231002", "CN-RID", NationalId("CN-RID", "11010519491231002X")),  # legacy
        ("ab-12 34", "NHS", NationalId("NHS", "AB1234")),  # another system: only cleaned
    ],
)
def test_national_id_forms(value: str, system: str, expected: NationalId) -> None:
    assert normalise_national_id(value, system) == expected


@pytest.mark.parametrize(
    ("value", "system", "message"),
    [
        ("000-12-3456", "US-SSN", "never 000, 666 or 900-999"),  # area 000
        ("123-00-4567", "US-SSN", "never 00"),  # group 00
        ("11010519491331002X", "CN-RID", "check digit is wrong"),  # month 13 + old check
        ("1101051949", "CN-RID", "must be 18 characters"),  # truncated
        ("123", None, "has no system"),  # which system?
        ("ü-123", "NHS", "letters and digits"),  # not ASCII
    ],
)
def test_bad_national_ids_are_refused_with_the_rule(
    value: str, system: str | None, message: str
) -> None:
    with pytest.raises(LinkageInputError, match=message):
        normalise_national_id(value, system)


@settings(deadline=None)
@given(latin_words, latin_words)
def test_latin_names_do_not_depend_on_field_order_case_or_spacing(
    family: list[str], given_words: list[str]
) -> None:
    a = normalise_name(" ".join(family), " ".join(given_words))
    b = normalise_name(" ".join(given_words).upper(), "-".join(family).title())
    full = normalise_name(None, None, "  ".join(given_words + family))
    assert sorted(a.words) == sorted(b.words) == sorted(full.words)
    assert a.han == b.han == ""


@settings(deadline=None)
@given(han_names)
def test_han_names_keep_their_characters_in_order(name: str) -> None:
    split = normalise_name(name[:1], name[1:])
    assert split.han == name and split.words == ()
    assert normalise_name(None, None, f" {name[:1]} {name[1:]}·").han == name


@pytest.mark.parametrize(
    ("parts", "words"),
    [
        (("José", "MARÍA"), ("jose", "maria")),  # accents and case
        (("O'Brien", None), ("obrien",)),  # apostrophes join
        (("O’Brien", None), ("obrien",)),  # typographic apostrophe too
        (("Müller-Lüdenscheidt", None), ("muller", "ludenscheidt")),  # hyphen separates
        (("Straße", None), ("strasse",)),  # case folding
        (("ＪＯＨＮ", None), ("john",)),  # full-width letters
        (("", "  "), ()),  # nothing usable
    ],
)
def test_latin_name_forms(parts: tuple[str | None, ...], words: tuple[str, ...]) -> None:
    assert normalise_name(*parts).words == words


@settings(deadline=None)
@given(birth_dates)
def test_birth_dates_in_either_iso_form(born: date) -> None:
    assert normalise_birth_date(born.isoformat()) == born
    assert normalise_birth_date(born.strftime("%Y%m%d")) == born
    assert normalise_birth_date(born) == born


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2023-02-30", "real day"),  # no such day
        ("07/05/1980", "YYYY-MM-DD"),  # ambiguous local format
        ("2999-01-01", "in the future"),
        ("1799-01-01", "before 1850"),
    ],
)
def test_bad_birth_dates(value: str, message: str) -> None:
    with pytest.raises(LinkageInputError, match=message):
        normalise_birth_date(value)


@pytest.mark.parametrize(
    ("value", "sex"),
    [
        ("M", "male"),
        ("female", "female"),
        ("女", "female"),
        ("男", "male"),
        ("U", None),
        (None, None),
    ],
)
def test_sex_forms(value: str | None, sex: str | None) -> None:
    assert normalise_sex(value) == sex


def test_unknown_sex_word_is_refused() -> None:
    with pytest.raises(LinkageInputError, match="male, female, other or unknown"):
        normalise_sex("yes")
