"""The project lifecycle: per-node verdicts, activity window, withdrawal and revocation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from medspace.policy import (
    ProjectError,
    ProjectState,
    ProjectStatus,
    Verdict,
    contract_hash,
)

from ._data import ALICE, BOB, LI, ROOT, T0, WANG, ZHAO


def test_status_moves_from_requested_to_active_to_expired(requested: ProjectState) -> None:
    project = requested.project
    assert requested.status(T0) is ProjectStatus.REQUESTED
    early = T0 - timedelta(days=35)
    approved = requested.approve(LI, "h1", "ethics vote attached", early)
    assert approved.status(early) is ProjectStatus.APPROVED  # before the start
    assert approved.status(project.starts_at) is ProjectStatus.ACTIVE
    assert approved.status(project.expires_at - timedelta(seconds=1)) is ProjectStatus.ACTIVE
    assert approved.status(project.expires_at) is ProjectStatus.EXPIRED


def test_approval_records_the_steward_reason_and_contract_hash(requested: ProjectState) -> None:
    state = requested.approve(LI, "h1", "  ethics vote attached ", T0)
    verdict = state.verdict("h1")
    assert verdict is not None
    assert (verdict.verdict, verdict.steward, verdict.reason) == (
        Verdict.APPROVED,
        "steward.li",
        "ethics vote attached",
    )
    assert verdict.contract_hash == contract_hash(requested.project, "h1")
    assert state.verdict("h2") is None
    assert state.approved_nodes() == ("h1",)


def test_steward_cannot_decide_for_another_node(requested: ProjectState) -> None:
    with pytest.raises(ProjectError, match=r"decides only for their own node \(h1\), not for h2"):
        requested.approve(LI, "h2", "looks fine", T0)
    with pytest.raises(ProjectError, match="not for h1"):
        requested.deny(WANG, "h1", "no", T0)


def test_steward_of_a_node_outside_the_project_cannot_decide(requested: ProjectState) -> None:
    with pytest.raises(ProjectError, match="does not take part"):
        requested.approve(ZHAO, "h3", "fine", T0)


@pytest.mark.parametrize("user", [ALICE, BOB, ROOT])
def test_only_stewards_approve(requested: ProjectState, user: object) -> None:
    with pytest.raises(ProjectError, match="only a steward may approve"):
        requested.approve(user, "h1", "fine", T0)  # type: ignore[arg-type]


def test_decisions_need_a_reason(requested: ProjectState) -> None:
    with pytest.raises(ProjectError, match="give a reason"):
        requested.deny(LI, "h1", "   ", T0)


def test_decisions_are_final(requested: ProjectState) -> None:
    denied = requested.deny(LI, "h1", "variables too identifying", T0)
    with pytest.raises(ProjectError, match="already denied this project; decisions are final"):
        denied.approve(LI, "h1", "changed my mind", T0)


def test_project_denied_everywhere_is_denied(requested: ProjectState) -> None:
    state = requested.deny(LI, "h1", "no", T0).deny(WANG, "h2", "no", T0)
    assert state.status(T0) is ProjectStatus.DENIED


def test_denied_node_cannot_be_tasked_while_others_can(requested: ProjectState) -> None:
    state = requested.approve(LI, "h1", "ok", T0).deny(WANG, "h2", "no", T0)
    assert state.status(T0) is ProjectStatus.ACTIVE
    assert state.task_refusal("h1", T0) is None
    refusal = state.task_refusal("h2", T0)
    assert refusal is not None and refusal.code == "denied"


def test_nothing_can_be_decided_after_expiry(requested: ProjectState) -> None:
    with pytest.raises(ProjectError, match="expired at 2025-04-01T00:00:00Z"):
        requested.approve(LI, "h1", "ok", requested.project.expires_at)


def test_steward_withdraws_only_their_own_approval(active: ProjectState) -> None:
    with pytest.raises(ProjectError, match="withdraws only their own node"):
        active.withdraw(LI, "h2", "audit finding", T0)
    state = active.withdraw(LI, "h1", "audit finding", T0)
    verdict = state.verdict("h1")
    assert verdict is not None and verdict.verdict is Verdict.WITHDRAWN
    assert verdict.contract_hash == contract_hash(active.project, "h1")
    refusal = state.task_refusal("h1", T0)
    assert refusal is not None and refusal.code == "withdrawn"
    assert state.status(T0) is ProjectStatus.ACTIVE  # h2 still approves
    with pytest.raises(ProjectError, match="no standing approval"):
        state.withdraw(LI, "h1", "again", T0)


@pytest.mark.parametrize("user", [ALICE, ROOT])
def test_owner_or_admin_revokes_the_whole_project(active: ProjectState, user: object) -> None:
    state = active.revoke(user, "consent withdrawn by ethics board", T0)  # type: ignore[arg-type]
    assert state.status(T0) is ProjectStatus.REVOKED
    assert state.revocation is not None and state.revocation.by == user.name  # type: ignore[attr-defined]
    with pytest.raises(ProjectError, match="was revoked"):
        state.revoke(ROOT, "again", T0)


@pytest.mark.parametrize("user", [BOB, LI])
def test_others_cannot_revoke_the_whole_project(active: ProjectState, user: object) -> None:
    with pytest.raises(ProjectError, match="only the project's owner or an admin"):
        active.revoke(user, "no", T0)  # type: ignore[arg-type]


def test_state_survives_a_json_round_trip(active: ProjectState) -> None:
    state = active.withdraw(LI, "h1", "audit", T0).revoke(ALICE, "done", T0)
    assert ProjectState.parse_json(state.model_dump_json()) == state


def test_forged_state_is_refused() -> None:
    with pytest.raises(ProjectError, match="invalid project state"):
        ProjectState.parse({"project": {}, "requested_at": "yesterday"})
