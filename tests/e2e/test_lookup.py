"""End to end: a clinician's emergency lookup across three hospitals (hub and nodes on
real loopback sockets): found at all three, one by a fuzzy match; an opted-out patient is
absent under ETREAT and returned under break-glass where the node allows it; every step
is in the ledger on both sides, without the patient."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from tests.hub.support import PASSWORD
from tests.lookup.support import A_SSN, B_DOB, B, lookup_network

from medspace.hub import HubClient
from medspace.lookup.ask import PatientInput, ask
from medspace.lookup.review import LookupLog
from medspace.node import Node, open_node

SLOW_MACHINE_DEADLINE = 30.0
"""Tests never depend on speed: a node's first lookup loads the PHI scrubber, which can
take seconds on a loaded machine, so tests wait far longer than the 2 s default."""


def _client(url: str, user: str) -> HubClient:
    client = HubClient(url)
    client.login(user, PASSWORD)
    return client


def test_patient_known_at_three_hospitals_is_found_at_all_three(tmp_path: Path) -> None:
    with lookup_network(tmp_path) as (hub, _threads, dirs):
        with open_node(dirs["h1"]) as node, _client(hub.url, "dr-h1") as client:
            outcome = ask(
                node,
                client,
                clinician="dr-h1",
                deadline=SLOW_MACHINE_DEADLINE,
                patient=PatientInput.parse(
                    national_id=A_SSN, name="Johnathan Smith", birth_date="1961-03-14", sex="male"
                ),
                reason="unconscious after a road accident, needs history now",
            )
        assert not outcome.partial
        assert sorted(a.node for a in outcome.matched) == ["h1", "h2", "h3"]
        kinds = {a.node: a.patients[0]["match"]["kind"] for a in outcome.matched}
        assert kinds == {"h1": "exact", "h2": "exact", "h3": "fuzzy"}
        summary = outcome.matched[0].patients[0]
        assert summary["allergies"][0]["criticality"] == "high"
        assert summary["labs"][0]["unit"] == "mg/dL"
        text = repr(outcome)
        assert "Smith" not in text and A_SSN not in text and "h1-P1" not in text


def test_opted_out_patient_is_absent_unless_break_glass(tmp_path: Path) -> None:
    patient = PatientInput.parse(national_id=B["national_id"], birth_date=B_DOB.isoformat())
    with lookup_network(tmp_path) as (hub, _threads, dirs):
        with open_node(dirs["h1"]) as node, _client(hub.url, "dr-h1") as client:
            normal = ask(
                node,
                client,
                clinician="dr-h1",
                deadline=SLOW_MACHINE_DEADLINE,
                patient=patient,
                reason="chest pain, needs prior cardiac history",
            )
            glass = ask(
                node,
                client,
                clinician="dr-h1",
                deadline=SLOW_MACHINE_DEADLINE,
                patient=patient,
                break_glass=True,
                reason="arrest in the ED, no consent obtainable",
            )
            replayed = _replay_at_hub(node, client)
        assert "seen before" in replayed
        assert normal.matched == []
        assert [a.node for a in glass.matched] == ["h2"]
        log = LookupLog(dirs["h2"])
        try:
            events = log.events(break_glass_only=True)
        finally:
            log.close()
        assert [e.request for e in events] == [glass.request]


def test_cli_lookup_review_and_a_refused_non_clinician(tmp_path: Path) -> None:
    import pytest
    from typer.testing import CliRunner

    from medspace.hub.client import HubRequestError
    from medspace.lookup.cli import app

    env = {
        "MEDSPACE_PASSWORD": PASSWORD,
        "MEDSPACE_HOME": str(tmp_path / "home"),
        "COLUMNS": "200",
    }
    runner = CliRunner()
    with lookup_network(tmp_path) as (hub, _threads, dirs):
        result = runner.invoke(
            app,
            [
                "--node",
                str(dirs["h1"]),
                "--as",
                "dr-h1",
                "--hub",
                hub.url,
                "--id",
                A_SSN,
                "--break-glass",
                "--deadline",
                "30",
                "--reason",
                "cardiac arrest in resus, no family present",
            ],
            env=env,
        )
        assert result.exit_code == 0, result.output
        assert "timeline" in result.output and "Penicillin" in result.output
        assert A_SSN not in result.output and "Smith" not in result.output
        request = result.output.split("lookup ", 1)[1].split(" ", 1)[0]
        # The steward of h2 reviews the break-glass event there.
        listed = runner.invoke(app, ["review", "--node", str(dirs["h2"])], env=env)
        assert request in listed.output and "to review" in listed.output
        marked = runner.invoke(
            app,
            [
                "review",
                "--node",
                str(dirs["h2"]),
                "--mark",
                request,
                "--unjustified",
                "--note",
                "no emergency on record",
            ],
            env=env,
        )
        assert marked.exit_code == 0 and "unjustified" in marked.output
        _node_api(hub.url, dirs["h1"])
        # A researcher cannot look up: refused at the hub, and the refusal is ledgered.
        core = hub.app.state.core
        before = core.log.size()
        with (
            _client(hub.url, "alice") as alice,
            open_node(dirs["h1"]) as node,
            pytest.raises(HubRequestError, match="clinician"),
        ):
            ask(
                node,
                alice,
                clinician="alice",
                patient=PatientInput.parse(national_id=A_SSN),
                reason="curious about a neighbour's history",
            )
        new = [e.signed for e in core.log.entries(start=before, limit=100)]
        refusals = [
            s.entry
            for s in new
            if s.entry.type.value == "lookup" and s.entry.details.get("decision") == "deny"
        ]
        assert refusals and refusals[0].details["role"] == "researcher"
        assert refusals[0].details["reason"] == "lookup/role"
        # The steward's review reaches the hub's ledger with h2's next answer.
        with _client(hub.url, "dr-h1") as dr, open_node(dirs["h1"]) as node:
            ask(
                node,
                dr,
                clinician="dr-h1",
                deadline=SLOW_MACHINE_DEADLINE,
                patient=PatientInput.parse(national_id=A_SSN),
                reason="second visit, checking the history again",
            )
        logged = [r.signed.entry for r in core.log.entries(start=0, limit=10_000)]
        reviews = [e for e in logged if e.type.value == "review"]
        assert [(e.actor, e.details["decision"]) for e in reviews] == [("h2", "unjustified")]
        assert {e.actor for e in logged if e.type.value == "view"} == {"h1"}
        # Nothing in the hub's ledger names the patient.
        everything = b"".join(r.signed.body for r in core.log.entries(start=0, limit=10_000))
        assert b"Smith" not in everything and A_SSN.encode() not in everything


def test_what_a_hospital_receives_cannot_act_as_the_clinician(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every hospital gets the lookup; a curious one must not be able to reuse what it got
    as the clinician's login, at the hub or at the asking node's API. And a malformed
    attempt is refused and ledgered like any other."""
    from fastapi.testclient import TestClient

    from medspace.hub.client import HubRequestError
    from medspace.lookup.api import create_api
    from medspace.lookup.responder import LookupResponder

    received: list[str] = []
    reasons: list[str] = []
    handle = LookupResponder.handle

    def curious(self: LookupResponder, body: dict[str, Any]) -> dict[str, Any]:
        if self.name == "h3":
            received.append(str(body.get("token")))
            reasons.append(json.dumps(body["request"]))
        return handle(self, body)

    monkeypatch.setattr(LookupResponder, "handle", curious)
    with lookup_network(tmp_path) as (hub, _threads, dirs):
        with open_node(dirs["h1"]) as node, _client(hub.url, "dr-h1") as client:
            outcome = ask(
                node,
                client,
                clinician="dr-h1",
                deadline=SLOW_MACHINE_DEADLINE,
                patient=PatientInput.parse(
                    national_id=A_SSN, name="Johnathan Smith", birth_date="1961-03-14"
                ),
                reason="unconscious after a fall, ID card says JOHNATHAN SMITH, born 14.03.61",
            )
            bearer = client._http.headers["Authorization"].split()[1]
        assert outcome.matched and len(received) == 1
        # The reason reached every hospital without the name or birth date it was typed with.
        assert "SMITH" not in reasons[0].upper() and "14.03.61" not in reasons[0]
        assert "unconscious after a fall" in reasons[0]
        forwarded = received[0]
        assert forwarded != bearer
        with HubClient(hub.url, forwarded) as as_dr, pytest.raises(HubRequestError) as denied:
            as_dr.get("/me")
        assert denied.value.http_status == 401
        with TestClient(create_api(dirs["h1"], hub.url)) as api:
            reply = api.post(
                "/lookup",
                headers={"Authorization": f"Bearer {forwarded}"},
                json={"id": A_SSN, "reason": "arrest, need history now", "break_glass": True},
            )
        assert reply.status_code == 401
        # A researcher's malformed lookup: refused, and the attempt is in the ledger.
        core = hub.app.state.core
        before = core.log.size()
        with _client(hub.url, "alice") as alice, pytest.raises(HubRequestError):
            alice.post("/lookup", {"request": {"query": "not a request"}})
        new = [e.signed.entry for e in core.log.entries(start=before, limit=100)]
        assert [e.details.get("reason") for e in new if e.type.value == "lookup"] == [
            "lookup/malformed"
        ]


def test_an_answer_the_hub_altered_or_made_up_is_left_out_and_the_result_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub routes every answer. Sealing keeps it from reading them, not from writing
    them: it could turn h2's "match" (with its allergy) into "no-match", or seal a
    made-up summary to the asking node's key. Each node's signed receipt catches both."""
    from medspace.hub.lookup import LookupHub
    from medspace.lookup.seal import Binding, seal

    ask_node = LookupHub._ask

    async def lying(self: LookupHub, node: str, key: str, message: Any, deadline: float) -> Any:
        line, bodies = await ask_node(self, node, key, message, deadline)
        if node == "h2" and line.get("answer") == "match":
            line = {**line, "answer": "no-match"}
            line.pop("sealed", None)
        elif node == "h1":  # a made-up summary, sealed to the asking node's key
            query = message["request"]["query"]
            request = query["request"]
            agreement = X25519PublicKey.from_public_bytes(base64.b64decode(query["agreement_key"]))
            fake = json.dumps({"node": "h1", "request": request, "patients": [{"sex": "x"}]})
            sealed = seal(fake.encode(), agreement, Binding(request, "h1", "h1"))
            line = {**line, "answer": "match", "sealed": sealed.to_json()}
        return line, bodies

    monkeypatch.setattr(LookupHub, "_ask", lying)
    with (
        lookup_network(tmp_path) as (hub, _threads, dirs),
        open_node(dirs["h1"]) as node,
        _client(hub.url, "dr-h1") as client,
    ):
        outcome = ask(
            node,
            client,
            clinician="dr-h1",
            deadline=SLOW_MACHINE_DEADLINE,
            patient=PatientInput.parse(national_id=A_SSN),
            reason="unconscious after a road accident, needs history now",
        )
    statuses = {a.node: a.status for a in outcome.answers}
    assert statuses["h2"] == "unverified" and statuses["h1"] == "unverified"
    assert outcome.partial and not outcome.matched
    reasons = {a.node: a.reason or "" for a in outcome.answers}
    assert "signed receipt" in reasons["h2"] and "signed receipt" in reasons["h1"]


def _replay_at_hub(node: object, client: HubClient) -> str:
    """Send one signed request twice; the hub answers the first and refuses the second."""
    import pytest

    from medspace.hub.client import HubRequestError
    from medspace.lookup import _linkage
    from medspace.lookup.request import LookupQuery, sign_query
    from medspace.policy import Purpose

    assert isinstance(node, Node)
    tokens = _linkage.tokens_from_input(
        node, national_id=A_SSN, id_system="US-SSN", name=None, birth_date=None, sex=None
    )
    query = LookupQuery.new(
        requester="h1",
        clinician="dr-h1",
        purpose=Purpose.ETREAT,
        justification="replay test: the same signed request twice",
        tokens=tokens,
        agreement_key=node.agreement_private_key().public_key(),
    )
    body = {
        "request": sign_query(query, node.identity_private_key()).to_json(),
        "entries": [],
        "deadline": SLOW_MACHINE_DEADLINE,
    }
    lines = list(client.stream_lines("/lookup", body))
    assert lines[-1]["type"] == "end"
    with pytest.raises(HubRequestError) as refused:
        list(client.stream_lines("/lookup", body))
    assert refused.value.http_status == 403
    return str(refused.value)


def _node_api(hub_url: str, node_dir: Path) -> None:
    """The node API: the same lookup for its clinicians, the review for its stewards."""
    import asyncio

    import httpx

    from medspace.lookup.api import create_api

    api = create_api(node_dir, hub_url)
    with _client(hub_url, "dr-h1") as dr, _client(hub_url, "steward-h1") as steward:
        dr_token = str(dr._http.headers["Authorization"]).removeprefix("Bearer ")
        steward_token = str(steward._http.headers["Authorization"]).removeprefix("Bearer ")

    async def calls() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=api)
        async with (
            api.router.lifespan_context(api),
            httpx.AsyncClient(transport=transport, base_url="http://node") as http,
        ):
            body = {
                "id": A_SSN,
                "name": "Johnathan Smith",
                "dob": "1961-03-14",
                "sex": "male",
                "phone": "555-010-1234",
                "reason": "found collapsed at home, history needed",
                "deadline": SLOW_MACHINE_DEADLINE,
            }
            return [
                await http.post("/lookup", json=body, headers=_bearer(dr_token)),
                # the node stays open between requests: a second lookup works the same
                await http.post("/lookup", json=body, headers=_bearer(dr_token)),
                await http.post("/lookup", json=body, headers=_bearer(steward_token)),
                await http.get("/lookup/review", headers=_bearer(steward_token)),
                await http.get("/lookup/review", headers=_bearer(dr_token)),
                await http.post("/lookup", json=body),
            ]

    looked, again, wrong_role, review, not_steward, anonymous = asyncio.run(calls())
    assert looked.status_code == 200, looked.text
    view = looked.json()
    assert {a["node"] for a in view["answers"] if a["answer"] == "match"} == {"h1", "h2", "h3"}
    assert again.status_code == 200, again.text
    assert again.json()["request"] != view["request"]
    assert {a["node"] for a in again.json()["answers"] if a["answer"] == "match"} == {
        "h1",
        "h2",
        "h3",
    }
    assert view["allergies"] and A_SSN not in looked.text and "Smith" not in looked.text
    assert "555-010-1234" not in looked.text
    assert wrong_role.status_code == 403
    assert review.status_code == 200 and review.json()["events"]
    assert not_steward.status_code == 403
    assert anonymous.status_code == 401


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
