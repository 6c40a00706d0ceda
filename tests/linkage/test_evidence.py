"""Phone and address as evidence: a different person born the same day whose name is one
character away from the one asked for is dropped when the phones differ, while a typo of
the same person (same phone, or a phone missing, or moved house) is still found; requests
without a phone score as before; old indexes and old JSON keep working."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from medspace.linkage import LinkageInputError, LinkageKey, ensure_table, probe, tokens_for
from medspace.linkage.evidence import weigh
from medspace.linkage.index import write_tokens
from medspace.linkage.normalise import normalise_address, normalise_phone
from medspace.linkage.tokens import LinkageTokens
from medspace.store.schema import linkage_token

KEY = LinkageKey(bytes(range(32)))
BORN = "1975-08-02"
PHONE_A = "+86 138 0013 8000"
PHONE_B = "13912345678"
HOME = ("100020", "朝阳区建国路88号3栋2单元101室")
ELSEWHERE = ("200030", "徐汇区漕溪北路12号")


def person(
    name: str, phone: str | None = None, home: tuple[str, str] | None = None
) -> LinkageTokens:
    return tokens_for(
        KEY,
        name=name,
        birth_date=BORN,
        sex="female",
        phone=phone,
        postal_code=None if home is None else home[0],
        address_line=None if home is None else home[1],
    )


def found(
    engine: sa.Engine, rows: list[tuple[str, LinkageTokens]], asked: LinkageTokens
) -> list[str]:
    ensure_table(engine)
    with engine.begin() as conn:
        write_tokens(conn, rows)
    return [m.person_source_id for m in probe(engine, asked)]


def test_a_different_person_one_character_away_is_dropped_when_the_phones_differ(
    engine: sa.Engine,
) -> None:
    # 李秀英 asked for; the hospital has 李秀瑛, same birth date and sex, another phone.
    other = person("李秀瑛", PHONE_B, ELSEWHERE)
    assert found(engine, [("H1", other)], person("李秀英", PHONE_A, HOME)) == []


def test_without_a_phone_in_the_request_the_name_alone_decides_as_before(
    engine: sa.Engine,
) -> None:
    other = person("李秀瑛", PHONE_B, ELSEWHERE)
    assert found(engine, [("H1", other)], person("李秀英")) == ["H1"]


@pytest.mark.parametrize(
    ("phone", "home", "why"),
    [
        ("138-0013-8000", ELSEWHERE, "moved house, same phone written differently"),
        (None, HOME, "no phone at this hospital"),
        (PHONE_B, HOME, "a new phone, same address"),
        (PHONE_A, None, "no address at this hospital"),
    ],
)
def test_a_typo_of_the_same_person_is_still_found(
    engine: sa.Engine, phone: str | None, home: tuple[str, str] | None, why: str
) -> None:
    same = person("李秀瑛", phone, home)  # the typo: 英 -> 瑛
    assert found(engine, [("H1", same)], person("李秀英", PHONE_A, HOME)) == ["H1"], why


def test_an_address_that_differs_without_a_phone_to_compare_is_no_evidence(
    engine: sa.Engine,
) -> None:
    # Addresses are free text; a differing one alone must not hide a person who moved.
    same = person("李秀瑛", None, ELSEWHERE)
    assert found(engine, [("H1", same)], person("李秀英", PHONE_A, HOME)) == ["H1"]


def test_evidence_rule_field_by_field() -> None:
    a, b = b"a" * 16, b"b" * 16
    assert weigh((a, b), (None, None)).contradicted
    assert weigh((a, b), (a, b)).contradicted
    assert not weigh((a, b), (a, a)).contradicted
    assert not weigh((a, a), (a, b)).contradicted
    assert not weigh((None, b), (a, b)).contradicted
    assert not weigh((a, None), (None, a)).contradicted


def test_phones_normalise_to_their_last_ten_digits() -> None:
    assert normalise_phone("+86 138 0013 8000") == normalise_phone("13800138000")
    assert normalise_phone("0086-138-0013-8000") == normalise_phone("138 0013 8000")
    assert normalise_phone("+1 (555) 010-1234") == normalise_phone("555.010.1234")
    assert normalise_phone("１３８００１３８０００") == normalise_phone("13800138000")  # full width
    assert normalise_phone("13800138000") != normalise_phone("13800138001")
    assert normalise_phone("ext 12") is None
    assert normalise_phone(None) is None and normalise_phone("") is None


def test_addresses_normalise_case_spacing_and_punctuation_away() -> None:
    assert normalise_address("02139", "12 Oak St., Apt 3") == normalise_address(
        "02139", "12 OAK ST APT 3"
    )
    assert normalise_address("100020", "建国路８８号") == normalise_address("100020", "建国路88号")
    assert normalise_address("02139", "12 Oak St") != normalise_address("02139", "14 Oak St")
    assert normalise_address("02139", None) is None  # a postal code alone is no evidence


def test_tokens_carry_phone_and_address_through_json_and_old_json_still_parses() -> None:
    made = person("李秀英", PHONE_A, HOME)
    assert made.phone is not None and made.address is not None
    assert LinkageTokens.from_json(made.to_json()) == made
    old = {k: v for k, v in made.to_json().items() if k not in ("phone", "address")}
    parsed = LinkageTokens.from_json(old)
    assert parsed.phone is None and parsed.address is None and parsed.clk == made.clk
    bare = person("李秀英")
    assert "phone" not in bare.to_json() and "address" not in bare.to_json()


def test_phone_tokens_are_keyed_and_reveal_nothing_without_the_key() -> None:
    mine = person("李秀英", PHONE_A)
    other_key = tokens_for(
        LinkageKey(bytes(32)), name="李秀英", birth_date=BORN, sex="female", phone=PHONE_A
    )
    assert mine.phone != other_key.phone
    assert b"13800138000" not in mine.phone  # type: ignore[operator]


@pytest.mark.parametrize("bad", ["ab", "00" * 17, "zz" * 16, 5])
def test_malformed_phone_tokens_are_refused(bad: object) -> None:
    doc = person("李秀英", PHONE_A).to_json()
    doc["phone"] = bad
    with pytest.raises(LinkageInputError):
        LinkageTokens.from_json(doc)


def test_an_index_made_before_the_evidence_columns_gains_them(engine: sa.Engine) -> None:
    # The table as the first release created it: everything but the evidence columns.
    old = sa.Table(
        linkage_token.name,
        sa.MetaData(),
        *(
            c._copy()
            for c in linkage_token.columns
            if not c.name.endswith(("phone_token", "address_token"))
        ),
    )
    old.create(engine)
    before = {c["name"] for c in sa.inspect(engine).get_columns("linkage_token")}
    assert "phone_token" not in before
    ensure_table(engine)
    ensure_table(engine)  # idempotent
    columns = {c["name"] for c in sa.inspect(engine).get_columns("linkage_token")}
    assert {"phone_token", "address_token"} <= columns
    other = person("李秀瑛", PHONE_B)
    assert found(engine, [("H1", other)], person("李秀英", PHONE_A)) == []
