"""decide() on project actions: roles, node binding, standing policy, reasons."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from medspace.identity import User
from medspace.policy import (
    Context,
    MemoryRecorder,
    Project,
    ProjectState,
    Purpose,
    contract_hash,
    decide,
)

from ._data import (
    ALICE,
    AUDREY,
    BOB,
    CAROL,
    DR_CHEN,
    H1_POLICY,
    H2_POLICY,
    LI,
    ROOT,
    WANG,
    ZHAO,
)

Ctx = Callable[..., Context]


@pytest.mark.parametrize("user", [CAROL, BOB])
def test_researcher_files_projects_only_in_their_own_name(
    project: Project, ctx: Ctx, user: User
) -> None:
    decision = decide(user, "project.create", project, ctx())
    assert not decision.allow
    assert decision.code == "project.create/owner"


def test_owner_may_file_and_each_node_awaits_approval(project: Project, ctx: Ctx) -> None:
    decision = decide(ALICE, "project.create", project, ctx())
    assert decision.allow
    assert [(o.name, o.value) for o in decision.obligations] == [
        ("await-approval", "h1"),
        ("await-approval", "h2"),
    ]


def test_project_that_already_expired_cannot_be_filed(project: Project, ctx: Ctx) -> None:
    decision = decide(ALICE, "project.create", project, ctx(now=project.expires_at))
    assert (decision.allow, decision.code) == (False, "project.create/expired")


@pytest.mark.parametrize(
    ("action", "user"),
    [
        ("project.create", LI),  # stewards do not file projects
        ("project.create", DR_CHEN),  # nor clinicians
        ("project.create", AUDREY),  # nor auditors
        ("project.create", ROOT),  # nor admins
        ("project.approve", ALICE),  # the owner cannot approve her own project
        ("project.approve", ROOT),  # admins do not approve for a node
        ("project.approve", AUDREY),
        ("project.approve", DR_CHEN),  # a clinician at h1 is not h1's steward
        ("project.deny", ALICE),
        ("project.deny", DR_CHEN),
        ("project.revoke", BOB),  # a researcher who does not own it
        ("project.revoke", CAROL),  # a member is not the owner
        ("project.revoke", AUDREY),  # auditors watch, they do not act
        ("project.revoke", DR_CHEN),
    ],
)
def test_wrong_role_is_denied(requested: ProjectState, ctx: Ctx, action: str, user: User) -> None:
    resource = requested.project if action == "project.create" else requested
    decision = decide(
        user, action, resource, ctx(node="h1", reason="because", node_policy=H1_POLICY)
    )
    assert not decision.allow
    assert decision.code == f"{action}/role", decision.reason


def test_steward_approves_for_their_node_with_contract_and_floor(
    requested: ProjectState, ctx: Ctx
) -> None:
    decision = decide(
        LI, "project.approve", requested, ctx(node="h1", reason="ok", node_policy=H1_POLICY)
    )
    assert decision.allow, decision.reason
    assert decision.obligation("contract-hash") == contract_hash(requested.project, "h1")
    assert decision.obligation("min-cell-size") == "10"  # h1's floor beats the project's 5


def test_steward_approving_for_another_node_is_denied(requested: ProjectState, ctx: Ctx) -> None:
    decision = decide(
        LI, "project.approve", requested, ctx(node="h2", reason="ok", node_policy=H2_POLICY)
    )
    assert (decision.allow, decision.code) == (False, "project.approve/other-node")
    assert "own node (h1), not for h2" in decision.reason


def test_steward_of_a_node_outside_the_project_is_denied(requested: ProjectState, ctx: Ctx) -> None:
    decision = decide(ZHAO, "project.approve", requested, ctx(reason="ok"))
    assert (decision.allow, decision.code) == (False, "project.approve/not-participant")


def test_approval_needs_a_reason_and_the_node_policy(requested: ProjectState, ctx: Ctx) -> None:
    no_reason = decide(LI, "project.approve", requested, ctx(node_policy=H1_POLICY))
    assert no_reason.code == "project.approve/no-reason"
    no_policy = decide(LI, "project.approve", requested, ctx(reason="ok"))
    assert no_policy.code == "project.approve/no-policy"
    wrong_policy = decide(LI, "project.approve", requested, ctx(reason="ok", node_policy=H2_POLICY))
    assert wrong_policy.code == "project.approve/no-policy"


def test_approval_of_a_purpose_the_node_forbids_is_denied(
    requested: ProjectState, ctx: Ctx
) -> None:
    strict = H1_POLICY.model_copy(update={"allowed_purposes": frozenset({Purpose.PUBHLTH})})
    decision = decide(LI, "project.approve", requested, ctx(reason="ok", node_policy=strict))
    assert (decision.allow, decision.code) == (False, "project.approve/purpose")
    assert "does not allow purpose HRESCH" in decision.reason


def test_steward_may_deny_with_a_reason(requested: ProjectState, ctx: Ctx) -> None:
    assert decide(WANG, "project.deny", requested, ctx(reason="too identifying")).allow
    assert not decide(WANG, "project.deny", requested, ctx()).allow


def test_a_second_verdict_is_denied(active: ProjectState, ctx: Ctx) -> None:
    decision = decide(LI, "project.deny", active, ctx(reason="second thoughts"))
    assert decision.code == "project.deny/already-decided"


@pytest.mark.parametrize(("user", "scope"), [(ALICE, "project"), (ROOT, "project")])
def test_owner_and_admin_revoke_the_project(
    active: ProjectState, ctx: Ctx, user: User, scope: str
) -> None:
    decision = decide(user, "project.revoke", active, ctx(reason="ethics board withdrew"))
    assert decision.allow
    assert decision.obligation("scope") == scope


def test_steward_revokes_for_their_own_node_only(active: ProjectState, ctx: Ctx) -> None:
    mine = decide(LI, "project.revoke", active, ctx(reason="audit finding"))
    assert mine.allow and mine.obligation("scope") == "node:h1"
    theirs = decide(LI, "project.revoke", active, ctx(node="h2", reason="audit finding"))
    assert theirs.code == "project.revoke/other-node"


def test_revocation_needs_a_reason(active: ProjectState, ctx: Ctx) -> None:
    assert decide(ALICE, "project.revoke", active, ctx()).code == "project.revoke/no-reason"


@pytest.mark.parametrize(
    ("user", "allowed"),
    [
        (ALICE, True),  # owner
        (CAROL, True),  # member
        (BOB, False),  # unrelated researcher
        (LI, True),  # steward of a participating node
        (ZHAO, False),  # steward of a node outside the project
        (DR_CHEN, False),  # clinicians have no business with projects
        (AUDREY, True),
        (ROOT, True),
    ],
)
def test_who_may_see_a_project(active: ProjectState, ctx: Ctx, user: User, allowed: bool) -> None:
    decision = decide(user, "project.show", active, ctx())
    assert decision.allow is allowed
    if not allowed:
        assert decision.code == "project.show/not-party"


def test_wrong_resource_type_is_denied_not_crashed(ctx: Ctx, recorder: MemoryRecorder) -> None:
    decision = decide(LI, "project.approve", {"id": "t2d-outcomes"}, ctx(node="h1", reason="ok"))
    assert (decision.allow, decision.code) == (False, "project.approve/malformed")
    assert recorder.records[-1].allow is False
