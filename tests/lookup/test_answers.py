"""The asking node reads the hub's answer lines: only what a node signed counts, and the
result is partial whenever an answer is missing, unverified or unreadable, whatever the
hub's closing line says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from medspace.identity import public_key_text
from medspace.lookup.answers import UNVERIFIED, AnswerReader
from medspace.lookup.pins import PeerPins
from medspace.lookup.receipt import Receipt
from medspace.lookup.request import LookupQuery
from medspace.policy import Purpose

OWN = Ed25519PrivateKey.generate()
H2 = Ed25519PrivateKey.generate()
AGREEMENT = X25519PrivateKey.generate()


def _query() -> LookupQuery:
    return LookupQuery.new(
        requester="h1",
        clinician="dr-h1",
        purpose=Purpose.ETREAT,
        justification="collapsed in the waiting room, history needed",
        tokens={"exact": "x"},
        agreement_key=AGREEMENT.public_key(),
    )


def _reader(tmp_path: Path, query: LookupQuery) -> AnswerReader:
    return AnswerReader(query, AGREEMENT, PeerPins(tmp_path), OWN.public_key())


def _line(query: LookupQuery, node: str, key: Ed25519PrivateKey, **changes: Any) -> dict[str, Any]:
    """A no-match answer line as the hub forwards it, signed by `key`."""
    receipt = Receipt(query.request, query.requester, node, "ok", "no-match", None)
    line = {
        "type": "answer",
        "node": node,
        "status": "ok",
        "answer": "no-match",
        "receipt": receipt.sign(key),
        "node_key": public_key_text(key.public_key()),
    }
    return {**line, **changes}


def _end(missing: list[str] | None = None) -> dict[str, Any]:
    return {"type": "end", "missing": missing or [], "partial": bool(missing)}


def test_signed_answers_from_every_known_node_make_a_complete_result(tmp_path: Path) -> None:
    query = _query()
    reader = _reader(tmp_path, query)
    answers = [reader.answer(_line(query, n, k), 0.1) for n, k in (("h1", OWN), ("h2", H2))]
    reader.end(_end())
    assert [a.status for a in answers if a] == ["ok", "ok"]
    assert reader.completeness([a for a in answers if a]) == ([], False)
    assert PeerPins(tmp_path).pinned() == {"h2": public_key_text(H2.public_key())}


def test_a_known_node_the_hub_leaves_out_makes_the_result_partial(tmp_path: Path) -> None:
    query = _query()
    PeerPins(tmp_path).pin("h2", H2.public_key())  # met in an earlier lookup
    for hub_says in ({"missing": []}, {"line": "missing"}):
        reader = _reader(tmp_path, query)
        answers = [reader.answer(_line(query, "h1", OWN), 0.1)]
        if "line" in hub_says:
            assert reader.answer({"type": "answer", "node": "h2", "status": "missing"}, 0.1) is None
        reader.end(_end())  # "complete", says the hub
        assert reader.completeness([a for a in answers if a]) == (["h2"], True)


def test_the_asking_nodes_own_answer_is_checked_with_its_own_key(tmp_path: Path) -> None:
    query = _query()
    reader = _reader(tmp_path, query)
    forged = reader.answer(_line(query, "h1", Ed25519PrivateKey.generate()), 0.1)
    assert forged is not None and forged.status == UNVERIFIED


def test_a_key_is_pinned_only_once_something_signed_with_it_verified(tmp_path: Path) -> None:
    query = _query()
    reader = _reader(tmp_path, query)
    fake = Ed25519PrivateKey.generate()
    line = _line(query, "h3", fake, receipt="AAAA")
    answer = reader.answer(line, 0.1)
    assert answer is not None and answer.status == UNVERIFIED
    assert "h3" not in PeerPins(tmp_path).pinned()


@pytest.mark.parametrize(
    "line",
    [
        ["not", "an", "object"],
        {"type": "answer", "node": "H 2", "status": "ok"},
        {"type": "answer", "node": "h2", "status": 5},
        {"type": "unreadable"},
    ],
)
def test_a_malformed_line_makes_the_result_partial_instead_of_failing(
    tmp_path: Path, line: Any
) -> None:
    query = _query()
    reader = _reader(tmp_path, query)
    own = reader.answer(_line(query, "h1", OWN), 0.1)
    assert own is not None
    opened = reader.answer(line, 0.1)
    assert opened is None or opened.status == UNVERIFIED
    reader.end(_end())
    assert reader.completeness([own])[1] is True


@pytest.mark.parametrize("answer", [1.5, ["match"], "\\ud800"])
def test_an_answer_value_canonical_json_cannot_hold_is_unverified(
    tmp_path: Path, answer: Any
) -> None:
    query = _query()
    reader = _reader(tmp_path, query)
    line = _line(query, "h2", H2, answer=answer if answer != "\\ud800" else "\ud800")
    opened = reader.answer(line, 0.1)
    assert opened is not None and opened.status == UNVERIFIED


def test_a_closing_line_with_a_malformed_missing_list_makes_it_partial(tmp_path: Path) -> None:
    query = _query()
    reader = _reader(tmp_path, query)
    own = reader.answer(_line(query, "h1", OWN), 0.1)
    assert own is not None
    reader.end({"type": "end", "missing": 5, "partial": False})
    assert reader.completeness([own])[1] is True


def test_a_refusal_counts_as_signed_only_with_its_reason_and_leaves_the_result_partial(
    tmp_path: Path,
) -> None:
    """A hospital that refused is in no timeline: partial. And the hub cannot reword why."""
    query = _query()
    reason = "this node does not allow break-glass lookups"
    receipt = Receipt(query.request, query.requester, "h2", "refused", None, None, reason)
    line = _line(query, "h2", H2, status="refused", reason=reason, receipt=receipt.sign(H2))
    line.pop("answer")
    reader = _reader(tmp_path, query)
    own = reader.answer(_line(query, "h1", OWN), 0.1)
    refused = reader.answer(line, 0.1)
    assert refused is not None and refused.status == "refused" and refused.reason == reason
    reader.end(_end())
    assert own is not None and reader.completeness([own, refused]) == ([], True)
    reworded = reader.answer({**line, "reason": "h2: no record of this patient"}, 0.1)
    assert reworded is not None and reworded.status == UNVERIFIED


def test_an_answer_checked_with_a_key_met_just_now_says_so(tmp_path: Path) -> None:
    """On first contact the key comes from the hub's registry: the clinician is told."""
    query = _query()
    first = _reader(tmp_path, query).answer(_line(query, "h2", H2), 0.1)
    assert first is not None and first.first_contact
    again = _reader(tmp_path, _query())
    later_query = _query()
    later = _reader(tmp_path, later_query).answer(_line(later_query, "h2", H2), 0.1)
    own = again.answer(_line(query, "h1", OWN), 0.1)
    assert later is not None and not later.first_contact
    assert own is not None and not own.first_contact


def test_names_in_the_closing_line_must_be_node_names(tmp_path: Path) -> None:
    query = _query()
    reader = _reader(tmp_path, query)
    own = reader.answer(_line(query, "h1", OWN), 0.1)
    reader.end({"type": "end", "missing": ["[/x]"], "partial": False})
    assert own is not None and reader.completeness([own]) == ([], True)


@pytest.mark.parametrize(
    "patient",
    [
        {"match": "x"},
        {"match": {"kind": "exact", "score": 1.0}, "diagnoses": 5},
        {"match": {"kind": "exact", "score": 1.0}, "drugs": [{"start": 5}]},
        {"match": {"kind": "exact", "score": 1.0}, "labs": [{"value": "high"}]},
        {"match": {"kind": "exact", "score": 1.0}, "allergies": [{"text": {"nested": 1}}]},
    ],
)
def test_a_sealed_summary_of_another_shape_is_an_error_not_a_crash(
    tmp_path: Path, patient: dict[str, Any]
) -> None:
    import json

    from medspace.lookup.receipt import sealed_digest
    from medspace.lookup.seal import Binding, seal

    query = _query()
    payload = json.dumps({"node": "h2", "request": query.request, "patients": [patient]})
    sealed = seal(payload.encode(), AGREEMENT.public_key(), Binding(query.request, "h1", "h2"))
    receipt = Receipt(query.request, "h1", "h2", "ok", "match", sealed_digest(sealed))
    line = _line(query, "h2", H2, answer="match", sealed=sealed.to_json(), receipt=receipt.sign(H2))
    opened = _reader(tmp_path, query).answer(line, 0.1)
    assert opened is not None and opened.status == "error" and "shape" in (opened.reason or "")
