"""Policy for federated queries: every statistic's computation kind must be allowed by the
project and by the node's standing policy; the project's answer quorum is in its terms."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from medspace.identity import Role, User
from medspace.policy import (
    Context,
    MemoryRecorder,
    NodePolicy,
    Project,
    ProjectError,
    ProjectState,
    Purpose,
    TaskRequest,
    contract_bytes,
    contract_hash,
    decide,
)

NOW = datetime(2025, 3, 1, tzinfo=UTC)
ALICE = User("alice", Role.RESEARCHER)
STEWARD = User("steward-h1", Role.STEWARD, "h1")


def _terms(**changes: Any) -> dict[str, Any]:
    terms: dict[str, Any] = {
        "id": "hcc-study",
        "title": "HCC response",
        "owner": "alice",
        "purpose": "HRESCH",
        "description": "Sorafenib response by age band and sex.",
        "cohort": {"condition_codes": ["C22"], "code_system": "ICD-10"},
        "variables": ["age", "sex"],
        "computations": ["count", "mean"],
        "disclosure": {"min_cell_size": 5},
        "nodes": ["h1", "h2", "h3"],
        "starts_at": (NOW - timedelta(days=1)).isoformat(),
        "expires_at": (NOW + timedelta(days=30)).isoformat(),
    }
    terms.update(changes)
    return terms


def _approved(project: Project) -> ProjectState:
    state = ProjectState.request(project, NOW - timedelta(hours=1))
    return state.approve(STEWARD, "h1", "ok", NOW - timedelta(minutes=30))


def _task(project: Project, computation: str, kinds: tuple[str, ...]) -> TaskRequest:
    return TaskRequest(
        project_id=project.id,
        node="h1",
        computation=computation,
        kinds=kinds,
        variables=("age",),
        contract_hash=contract_hash(project, "h1"),
    )


def _policy(*kinds: str) -> NodePolicy:
    return NodePolicy(
        node="h1",
        min_cell_floor=5,
        allowed_purposes=frozenset({Purpose.HRESCH}),
        allowed_computations=frozenset(kinds),
    )


def test_quorum_defaults_to_two_and_is_part_of_the_contract() -> None:
    project = Project.parse(_terms())
    assert project.answer_quorum() == 2
    assert json.loads(contract_bytes(project, "h1"))["project"]["quorum"] == 2
    stricter = Project.parse(_terms(quorum=3))
    assert stricter.answer_quorum() == 3
    assert contract_hash(stricter, "h1") != contract_hash(project, "h1")


@pytest.mark.parametrize("quorum", [1, 4], ids=["below-two", "above-node-count"])
def test_quorum_outside_two_to_node_count_is_refused(quorum: int) -> None:
    with pytest.raises(ProjectError, match="quorum"):
        Project.parse(_terms(quorum=quorum))


def test_task_asking_for_a_kind_the_project_does_not_allow_is_denied_at_the_hub() -> None:
    project = Project.parse(_terms())
    task = _task(project, "count", ("logistic",))
    decision = decide(
        ALICE, "task.submit", _approved(project), Context(NOW, MemoryRecorder(), task=task)
    )
    assert not decision.allow
    assert "logistic" in decision.reason


def test_node_policy_must_allow_every_kind_of_the_query() -> None:
    project = Project.parse(_terms())
    task = _task(project, "count", ("mean",))
    state = _approved(project)
    narrow = decide(
        ALICE,
        "task.run",
        state,
        Context(NOW, MemoryRecorder(), task=task, node_policy=_policy("count")),
    )
    assert not narrow.allow
    assert "mean" in narrow.reason
    wide = decide(
        ALICE,
        "task.run",
        state,
        Context(NOW, MemoryRecorder(), task=task, node_policy=_policy("count", "mean")),
    )
    assert wide.allow
