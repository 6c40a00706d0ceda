"""Exact tokens, CLKs and their JSON form: equal for one person, unlike for others,
useless under another key."""

from __future__ import annotations

import base64
import hmac
import os
from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medspace.linkage import (
    DEFAULT_SCHEMA,
    DEFAULT_THRESHOLD,
    ClkSchema,
    LinkageInputError,
    LinkageKey,
    LinkageTokens,
    dice,
    tokens_for,
)
from medspace.linkage.key import KeyedHash
from medspace.linkage.tokens import soundex

KEY = LinkageKey(bytes(range(32)))
RID = "11010519491231002X"


def clk(key: LinkageKey = KEY, **fields: str) -> bytes:
    made = tokens_for(key, **fields).clk  # type: ignore[arg-type]
    assert made is not None
    return made


def test_the_exact_token_ignores_formatting_and_depends_on_system_and_key() -> None:
    one = tokens_for(KEY, national_id=RID, id_system="CN-RID").exact
    assert one is not None and len(one) == 32
    assert tokens_for(KEY, national_id=" 110105 19491231 002x", id_system="cn-rid").exact == one
    other_key = LinkageKey(os.urandom(32))
    assert tokens_for(other_key, national_id=RID, id_system="CN-RID").exact != one
    ssn = tokens_for(KEY, national_id="123-45-6789", id_system="US-SSN").exact
    same_digits_other_system = tokens_for(KEY, national_id="123456789", id_system="NHS").exact
    assert ssn != same_digits_other_system


def test_the_exact_token_is_hmac_sha256_of_system_and_id_under_a_derived_key() -> None:
    expected = hmac.digest(KEY.derive("exact"), f"CN-RID|{RID}".encode(), "sha256")
    assert tokens_for(KEY, national_id=RID, id_system="CN-RID").exact == expected


@settings(deadline=None)
@given(st.binary(max_size=100), st.binary(max_size=200))
def test_keyed_hash_equals_hmac_sha256(key: bytes, message: bytes) -> None:
    assert KeyedHash(key)(message) == hmac.digest(key, message, "sha256")


def test_a_wrong_check_digit_makes_no_tokens() -> None:
    with pytest.raises(LinkageInputError, match="check digit is wrong"):
        tokens_for(KEY, national_id="110105194912310021", id_system="CN-RID")


@pytest.mark.parametrize(
    "fields",
    [
        {},  # nothing at all
        {"name": "John Smith"},  # a name alone matches too many people
        {"birth_date": "1980-05-07", "sex": "male"},  # no name
    ],
)
def test_too_little_to_link_on_is_refused(fields: dict[str, str]) -> None:
    with pytest.raises(LinkageInputError, match="national ID, or a name together with"):
        tokens_for(KEY, **fields)


def test_an_id_alone_gives_an_exact_token_and_no_clk() -> None:
    made = tokens_for(KEY, national_id="123-45-6789", id_system="US-SSN")
    assert made.exact is not None and made.clk is None and made.blocks == {}


def test_full_name_field_order_and_case_give_the_same_clk() -> None:
    a = clk(name="John Smith", birth_date="1980-05-07", sex="M")
    b = clk(family_name="SMITH", given_name="john", birth_date="19800507", sex="male")
    assert a == b and len(a) == DEFAULT_SCHEMA.bits // 8


@pytest.mark.parametrize(
    ("written", "typo"),
    [
        ("Jonathan Smith", "Jonathan Smtih"),  # two letters swapped
        ("Jonathan Smith", "Jonathan Smith Smith"),  # a word repeated
        ("Jonathan Smith", "Jonathon Smith"),  # a vowel changed
        ("Maria Gonzalez", "Maria Gonzales"),  # last letter changed
        ("Elizabeth Thompson", "Elizabeth Tompson"),  # a letter dropped
        ("Luke Thompson", "Lukke Thompson"),  # a letter doubled
        ("张建华", "张建桦"),  # a look-alike Han character
        ("王秀英", "王秀瑛"),  # another
    ],
)
def test_one_typo_in_a_name_still_matches(written: str, typo: str) -> None:
    fields = {"birth_date": "1961-03-14", "sex": "female"}
    assert dice(clk(name=written, **fields), clk(name=typo, **fields)) >= DEFAULT_THRESHOLD


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Jonathan Smith", "Maria Gonzalez"),  # nothing in common but the birth date
        ("Jennifer Kelly", "Robert Thompson"),  # another name entirely
        ("张伟", "李娜"),  # different Han names
        ("张建华", "刘秀英"),
    ],
)
def test_different_people_born_the_same_day_do_not_match(first: str, second: str) -> None:
    fields = {"birth_date": "1961-03-14", "sex": "female"}
    assert dice(clk(name=first, **fields), clk(name=second, **fields)) < DEFAULT_THRESHOLD


def test_the_same_name_born_another_day_does_not_match() -> None:
    a = clk(name="Michael Johnson", birth_date="1971-03-24", sex="male")
    b = clk(name="Michael Johnson", birth_date="1985-05-06", sex="male")
    assert dice(a, b) < DEFAULT_THRESHOLD


def test_clks_under_another_key_do_not_match_the_same_person() -> None:
    fields = {"name": "Jonathan Smith", "birth_date": "1961-03-14", "sex": "female"}
    other = LinkageKey(os.urandom(32))
    assert dice(clk(**fields), clk(other, **fields)) < 0.6


def test_weights_change_the_schema_tag() -> None:
    assert ClkSchema(k_name=5).tag != DEFAULT_SCHEMA.tag
    with pytest.raises(LinkageInputError, match="multiple of 8"):
        ClkSchema(bits=1001)


@settings(max_examples=50, deadline=None)
@given(
    st.one_of(st.none(), st.just(RID)),
    st.text(alphabet="abcdefgh 张伟", min_size=1, max_size=20).filter(lambda s: s.strip(" ")),
    st.dates(min_value=date(1900, 1, 1), max_value=date(2020, 1, 1)),
)
def test_tokens_round_trip_through_json(nid: str | None, name: str, born: date) -> None:
    made = tokens_for(
        KEY, national_id=nid, id_system="CN-RID" if nid else None, name=name, birth_date=born
    )
    assert LinkageTokens.from_json(made.to_json()) == made


@pytest.mark.parametrize(
    "change",
    [
        {"v": 2},  # unknown version
        {"exact": "zz"},  # not hex
        {"exact": "00" * 31},  # wrong length
        {"clk": "***"},  # not base64
        {"blocks": {"birth": "00" * 15}},  # short block key
        {"blocks": {"postcode": "00" * 16}},  # unknown block kind
        {"exact": None, "clk": None},  # nothing to probe with
        {"key_id": "k" * 10_000},  # an absurd key id
        {"blocks": ["birth"]},  # blocks must be a mapping
    ],
)
def test_malformed_tokens_are_refused(change: dict[str, object]) -> None:
    doc = tokens_for(KEY, national_id=RID, id_system="CN-RID", name="张伟", birth_date="1949-12-31")
    with pytest.raises(LinkageInputError):
        LinkageTokens.from_json({**doc.to_json(), **change})


def test_the_clk_sets_a_reasonable_share_of_bits() -> None:
    made = clk(name="Jonathan Smith", birth_date="1961-03-14", sex="female")
    ones = int.from_bytes(made, "big").bit_count()
    assert 150 < ones < 512  # a Bloom filter far from empty and far from saturated
    assert base64.b64decode(tokens_for(KEY, name="张伟", birth_date="1961-03-14").to_json()["clk"])


def test_block_keys_survive_the_errors_they_are_for() -> None:
    base = tokens_for(KEY, name="Jonathan Smith", birth_date="1961-03-14", sex="F").blocks
    typo = tokens_for(KEY, name="Jonathan Smtih", birth_date="1961-03-14", sex="F").blocks
    wrong_day = tokens_for(KEY, name="Jonathan Smith", birth_date="1961-03-15", sex="F").blocks
    assert typo["birth"] == base["birth"]
    assert wrong_day["cohort"] == base["cohort"] and wrong_day["sound"] == base["sound"]
    assert replace(tokens_for(KEY, name="Jonathan Smith", birth_date="1961-03-14"), blocks={})


@pytest.mark.parametrize(
    ("word", "code"),
    [("robert", "r163"), ("rupert", "r163"), ("ashcraft", "a261"), ("tymczak", "t522"), ("", "")],
)
def test_soundex(word: str, code: str) -> None:
    assert soundex(word) == code
