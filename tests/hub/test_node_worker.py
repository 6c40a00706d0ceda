"""The node's own checks on a task: patient opt-outs are left out of counts, and a hub that
later shows other terms for a project is refused (the node keeps its own copy)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tests.hub.support import delegation, make_node, project_terms, steward_approval

from medspace.identity import Role, User, public_key_text
from medspace.identity.stewards import pin_steward
from medspace.ledger import NoteSigner
from medspace.node import open_node
from medspace.node.standing import HubPin, save_consent
from medspace.node.worker import NodeWorker
from medspace.policy import Project, ProjectState, TaskRequest, contract_hash

NOW = datetime.now(UTC)
HUB_KEY = Ed25519PrivateKey.generate()
STEWARD_KEY = Ed25519PrivateKey.generate()


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[NodeWorker]:
    node_dir = make_node(tmp_path / "h1", "h1", 10, 8)
    pin_steward(node_dir, "steward-h1", public_key_text(STEWARD_KEY))
    pin = HubPin(
        "test-hub",
        public_key_text(HUB_KEY),
        NoteSigner("test-hub", Ed25519PrivateKey.generate()).verifier.vkey,
    )
    with open_node(node_dir) as node:
        result = NodeWorker(node, pin)
        yield result
        result.close()


def _task(terms: dict[str, Any]) -> dict[str, Any]:
    project = Project.parse({"owner": "alice", **terms})
    steward = User("steward-h1", Role.STEWARD, "h1")
    state = steward_approval(ProjectState.request(project, NOW), steward, STEWARD_KEY, NOW)
    task = TaskRequest(
        project_id=project.id,
        node="h1",
        computation="count",
        variables=("condition.code",),
        contract_hash=contract_hash(project, "h1"),
    )
    task_id = str(uuid.uuid4())
    token = delegation(HUB_KEY, User("alice", Role.RESEARCHER), "task", task_id, NOW)
    return {
        "task_id": task_id,
        "task": task.model_dump(mode="json"),
        "project": state.model_dump(mode="json"),
        "token": token,
    }


def test_opted_out_patients_are_left_out_of_the_count(worker: NodeWorker) -> None:
    request = _task(project_terms("consent-1", ["h1"]))
    assert worker.handle_task(request, now=NOW)["count"] == 8
    store = worker.node.store
    opted = [store.pseudonym("h1-P0"), store.pseudonym("h1-P1")]
    save_consent(worker.node.directory, {p: ["HRESCH"] for p in opted})
    assert worker.handle_task(request, now=NOW)["count"] == 6
    save_consent(worker.node.directory, {opted[0]: ["ETREAT"]})  # another purpose: counted
    assert worker.handle_task(request, now=NOW)["count"] == 8


def test_hub_showing_other_terms_later_is_refused(worker: NodeWorker) -> None:
    first = _task(project_terms("terms-1", ["h1"]))
    assert worker.handle_task(first, now=NOW)["status"] == "ok"
    widened = _task(project_terms("terms-1", ["h1"], cohort={"all_patients": True}))
    reply = worker.handle_task(widened, now=NOW)
    assert reply["status"] == "refused"
    assert "never change" in reply["reason"]


def test_forged_researcher_token_is_refused(worker: NodeWorker) -> None:
    request = _task(project_terms("token-1", ["h1"]))
    alice = User("alice", Role.RESEARCHER)
    forged = delegation(Ed25519PrivateKey.generate(), alice, "task", request["task_id"], NOW)
    reply = worker.handle_task({**request, "token": forged}, now=NOW)
    assert reply["status"] == "refused"
