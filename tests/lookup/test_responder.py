"""The answering node checks everything itself: the asking node's signature (pinned key),
freshness and replays, the clinician's token, its own policy and consent. These tests
play a lying or careless hub against a real node directory."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tests.hub.support import delegation
from tests.lookup.support import A_DOB, A_SSN, UNKNOWN_SSN, A, make_lookup_node

from medspace.identity import Role, User, issue_token, public_key_text
from medspace.ledger import SignedEntry
from medspace.linkage import LinkageKey
from medspace.lookup import _linkage
from medspace.lookup.request import LookupQuery, SignedQuery, sign_query
from medspace.lookup.responder import LookupResponder
from medspace.lookup.seal import Binding, Sealed, open_sealed
from medspace.node import Node, open_node
from medspace.node.keys import atomic_write
from medspace.node.standing import CONSENT_FILE, POLICY_FILE, save_consent, save_node_policy
from medspace.policy import NodePolicy, Purpose

DR = User("dr-h1", Role.CLINICIAN, "h1")


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lookup")
    key = LinkageKey.generate()
    return {n: make_lookup_node(root / n, n, key, fillers=3) for n in ("h1", "h2", "h3")}


@pytest.fixture
def hub_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def asker(nodes: dict[str, Path]) -> Iterator[Node]:
    with open_node(nodes["h1"]) as node:
        yield node


def _responder(directory: Path, hub_key: Ed25519PrivateKey) -> LookupResponder:
    return LookupResponder(open_node(directory), hub_key.public_key())


def _body(
    asker: Node,
    hub_key: Ed25519PrivateKey,
    *,
    national_id: str | None = A_SSN,
    purpose: Purpose = Purpose.ETREAT,
    user: User = DR,
    now: datetime | None = None,
) -> dict[str, Any]:
    tokens = _linkage.tokens_from_input(
        asker,
        national_id=national_id,
        id_system="US-SSN",
        name=f"{A['given_name']} {A['family_name']}",
        birth_date=A_DOB,
        sex="male",
    )
    query = LookupQuery.new(
        requester="h1",
        clinician="dr-h1",
        purpose=purpose,
        justification="collapsed in the waiting room, history needed",
        tokens=tokens,
        agreement_key=asker.agreement_private_key().public_key(),
        now=now,
    )
    return {
        "type": "lookup",
        "request": sign_query(query, asker.identity_private_key()).to_json(),
        "token": delegation(hub_key, user, "lookup", query.request),
        "requester_key": public_key_text(asker.identity_public_key),
    }


def _entry_types(reply: dict[str, Any]) -> list[str]:
    return [SignedEntry.from_bytes(base64.b64decode(e)).entry.type.value for e in reply["entries"]]


def test_a_known_patient_gets_a_sealed_summary_only_the_asker_opens(
    nodes: dict[str, Path], hub_key: Ed25519PrivateKey, asker: Node
) -> None:
    body = _body(asker, hub_key)
    reply = _responder(nodes["h2"], hub_key).handle(body)
    assert reply["status"] == "ok" and reply["answer"] == "match"
    request = body["request"]["query"]["request"]
    plain = open_sealed(
        Sealed.from_json(reply["sealed"]),
        asker.agreement_private_key(),
        Binding(request, "h1", "h2"),
    )
    assert b"Penicillin" in plain and b"Smith" not in plain and A_SSN.encode() not in plain
    assert b"h2-P1" not in plain  # no source ids either
    assert _entry_types(reply)[-2:] == ["match", "answer"]
    ledger_text = b"".join(base64.b64decode(e) for e in reply["entries"])
    assert b"Smith" not in ledger_text and b"h2-P1" not in ledger_text


def test_a_node_that_does_not_know_the_patient_answers_no_match_and_nothing_else(
    nodes: dict[str, Path], hub_key: Ed25519PrivateKey, asker: Node
) -> None:
    reply = _responder(nodes["h2"], hub_key).handle(_body(asker, hub_key, national_id=UNKNOWN_SSN))
    assert reply["status"] == "ok" and reply["answer"] == "no-match"
    assert "sealed" not in reply
    assert "match" not in _entry_types(reply)


def test_a_replayed_request_is_refused(
    nodes: dict[str, Path], hub_key: Ed25519PrivateKey, asker: Node
) -> None:
    body = _body(asker, hub_key)
    responder = _responder(nodes["h2"], hub_key)
    assert responder.handle(body)["status"] == "ok"
    again = _responder(nodes["h2"], hub_key).handle(body)  # also after a restart
    assert again["status"] == "refused" and "seen before" in again["reason"]
    # Only the hub can send a request twice: no signed receipt for it to pass on as
    # this hospital's answer.
    assert "receipt" not in again


def test_a_stale_request_is_refused(
    nodes: dict[str, Path], hub_key: Ed25519PrivateKey, asker: Node
) -> None:
    old = datetime.now(UTC) - timedelta(minutes=10)
    reply = _responder(nodes["h2"], hub_key).handle(_body(asker, hub_key, now=old))
    assert reply["status"] == "refused" and "issued more than" in reply["reason"]


def test_the_hub_cannot_upgrade_a_request_to_break_glass(
    nodes: dict[str, Path], hub_key: Ed25519PrivateKey, asker: Node
) -> None:
    body = _body(asker, hub_key)
    body["request"]["query"]["purpose"] = "BTG"
    reply = _responder(nodes["h2"], hub_key).handle(body)
    assert reply["status"] == "refused" and "signature does not verify" in reply["reason"]


def test_the_hub_cannot_pass_off_another_user_as_the_clinician(
    nodes: dict[str, Path], hub_key: Ed25519PrivateKey, asker: Node
) -> None:
    researcher = User("alice", Role.RESEARCHER)
    reply = _responder(nodes["h2"], hub_key).handle(_body(asker, hub_key, user=researcher))
    assert reply["status"] == "refused" and "not the clinician" in reply["reason"]


def test_a_token_the_hub_key_did_not_sign_is_refused(
    nodes: dict[str, Path], hub_key: Ed25519PrivateKey, asker: Node
) -> None:
    body = _body(asker, Ed25519PrivateKey.generate())
    reply = _responder(nodes["h2"], hub_key).handle(body)
    assert reply["status"] == "refused" and "token signature is invalid" in reply["reason"]


def test_only_a_delegation_for_this_request_is_taken_never_a_bearer_token(
    nodes: dict[str, Path], hub_key: Ed25519PrivateKey, asker: Node
) -> None:
    """The clinician's login token is not what the hub forwards: a node that got it could
    act as the clinician at the hub and at the asking node's API until it expired."""
    responder = _responder(nodes["h2"], hub_key)
    body = _body(asker, hub_key)
    request = SignedQuery.from_json(body["request"]).query.request
    wrong = (
        issue_token(hub_key, DR, timedelta(minutes=5)),  # the login token itself
        delegation(hub_key, DR, "lookup", "another-request"),
        delegation(hub_key, DR, "task", request),  # made for another audience
    )
    for token in wrong:
        reply = responder.handle({**_body(asker, hub_key), "token": token})
        assert reply["status"] == "refused", token
    assert responder.handle(body)["status"] == "ok"


def test_a_delegation_for_another_role_is_refused_without_a_receipt(
    nodes: dict[str, Path], hub_key: Ed25519PrivateKey, asker: Node
) -> None:
    """Only the hub makes delegations: had the node signed "a steward may not look up",
    the hub could pass that off as this hospital's answer instead of its match."""
    steward = User("dr-h1", Role.STEWARD, "h1")
    body = _body(asker, hub_key)
    request = SignedQuery.from_json(body["request"]).query.request
    reply = _responder(nodes["h2"], hub_key).handle(
        {**body, "token": delegation(hub_key, steward, "lookup", request)}
    )
    assert reply["status"] == "refused" and "receipt" not in reply


def test_a_swapped_asking_node_key_is_refused_after_the_first_pin(
    nodes: dict[str, Path], hub_key: Ed25519PrivateKey, asker: Node
) -> None:
    responder = _responder(nodes["h2"], hub_key)
    assert responder.handle(_body(asker, hub_key))["status"] == "ok"  # pins h1's key
    forged = Ed25519PrivateKey.generate()
    body = _body(asker, hub_key)
    query = LookupQuery.from_json(body["request"]["query"])
    body["request"] = sign_query(query, forged).to_json()
    body["requester_key"] = public_key_text(forged.public_key())
    reply = responder.handle(body)
    assert reply["status"] == "refused" and "another identity key" in reply["reason"]


def test_break_glass_is_refused_where_the_node_does_not_allow_it(
    nodes: dict[str, Path], hub_key: Ed25519PrivateKey, asker: Node
) -> None:
    reply = _responder(nodes["h3"], hub_key).handle(_body(asker, hub_key, purpose=Purpose.BTG))
    assert reply["status"] == "refused" and "does not allow break-glass" in reply["reason"]
    assert "break_glass" not in _entry_types(reply)


def test_a_flagged_patient_raises_an_alert(
    nodes: dict[str, Path], hub_key: Ed25519PrivateKey, asker: Node
) -> None:
    responder = _responder(nodes["h2"], hub_key)
    responder.log.set_flag(responder.node.store.pseudonym("h2-P1"), "vip")
    reply = responder.handle(_body(asker, hub_key))
    assert "alert" in _entry_types(reply)
    assert responder.log.alerts()[0].kind == "alert.flagged-vip"


def test_a_stewards_edit_of_policy_or_consent_counts_from_the_next_lookup(
    nodes: dict[str, Path], hub_key: Ed25519PrivateKey, asker: Node
) -> None:
    """The responder keeps its parsed policy and consent between lookups (node service
    processes live for months); an edit must still take effect at once."""
    h2 = nodes["h2"]
    responder = _responder(h2, hub_key)
    assert responder.handle(_body(asker, hub_key))["answer"] == "match"
    saved = {name: (h2 / name).read_bytes() for name in (POLICY_FILE, CONSENT_FILE)}
    try:
        save_node_policy(h2, NodePolicy(node="h2", allowed_purposes=frozenset({Purpose.HRESCH})))
        assert responder.handle(_body(asker, hub_key))["status"] == "refused"
        atomic_write(h2 / POLICY_FILE, saved[POLICY_FILE])
        opted_out = json.loads(saved[CONSENT_FILE])
        save_consent(h2, {**opted_out, responder.node.store.pseudonym("h2-P1"): ["ETREAT"]})
        reply = responder.handle(_body(asker, hub_key))
        assert reply["status"] == "ok" and reply["answer"] == "no-match"
    finally:
        for name, data in saved.items():
            atomic_write(h2 / name, data)
    assert responder.handle(_body(asker, hub_key))["answer"] == "match"
