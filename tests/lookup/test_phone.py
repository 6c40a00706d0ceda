"""`--phone` (optional) reaches the linkage tokens a lookup sends, so answering nodes can
use it as evidence for or against a match by name; leaving it out sends what was sent
before."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.lookup.support import A_DOB, make_lookup_node

from medspace.linkage import LinkageKey, LinkageTokens
from medspace.lookup import _linkage
from medspace.lookup.ask import PatientInput
from medspace.node import open_node


def test_a_typed_phone_is_kept_and_a_blank_one_is_not_given() -> None:
    asked = PatientInput.parse(name="John Smith", birth_date="1961-03-14", phone=" 555-010-1234 ")
    assert asked.phone == "555-010-1234"
    assert PatientInput.parse(name="John Smith", birth_date="1961-03-14", phone="  ").phone is None
    assert "555" not in repr(asked)


def test_the_phone_travels_as_a_keyed_token(tmp_path: Path) -> None:
    directory = make_lookup_node(tmp_path / "h1", "h1", LinkageKey.generate(), fillers=0)
    with open_node(directory) as node:
        common = {"national_id": None, "id_system": None, "name": "John Smith", "sex": "male"}
        sent = _linkage.tokens_from_input(node, birth_date=A_DOB, phone="555 010 1234", **common)
        bare = _linkage.tokens_from_input(node, birth_date=A_DOB, **common)
    assert "phone" not in bare
    assert "5550101234" not in str(sent)
    tokens = LinkageTokens.from_json(sent)
    assert tokens.phone is not None and tokens.clk == LinkageTokens.from_json(bare).clk


@pytest.mark.parametrize("phone", [None, "ext 4"])
def test_no_usable_phone_adds_nothing(tmp_path: Path, phone: str | None) -> None:
    directory = make_lookup_node(tmp_path / "h1", "h1", LinkageKey.generate(), fillers=0)
    with open_node(directory) as node:
        sent = _linkage.tokens_from_input(
            node,
            national_id=None,
            id_system=None,
            name="John Smith",
            birth_date=A_DOB,
            sex="male",
            phone=phone,
        )
    assert "phone" not in sent
