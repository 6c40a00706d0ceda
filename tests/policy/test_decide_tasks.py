"""decide() on tasks: the hub checks, and the node re-checks without trusting the hub."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medspace.identity import User
from medspace.policy import (
    Context,
    MemoryRecorder,
    NodePolicy,
    Project,
    ProjectState,
    Purpose,
    TaskRequest,
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
    T0,
    WANG,
    project_terms,
)

Ctx = Callable[..., Context]


def task_for(state: ProjectState, node: str = "h1", **changes: Any) -> TaskRequest:
    fields: dict[str, Any] = {
        "project_id": state.project.id,
        "node": node,
        "computation": "count",
        "variables": ["age", "sex"],
        "contract_hash": contract_hash(state.project, node),
    }
    fields.update(changes)
    return TaskRequest.parse(fields)


def run(state: ProjectState, ctx: Ctx, task: TaskRequest, **fields: Any) -> Any:
    fields.setdefault("node_policy", H1_POLICY if task.node == "h1" else H2_POLICY)
    return decide(ALICE, "task.run", state, ctx(task=task, **fields))


def test_member_submits_and_node_runs_with_obligations(active: ProjectState, ctx: Ctx) -> None:
    task = task_for(active)
    submitted = decide(CAROL, "task.submit", active, ctx(task=task))
    assert submitted.allow, submitted.reason
    assert submitted.obligation("contract-hash") == task.contract_hash
    ran = run(active, ctx, task)
    assert ran.allow, ran.reason
    assert ran.obligation("min-cell-size") == "10"
    assert ran.obligation("exclude-opted-out") == "HRESCH"


@pytest.mark.parametrize("user", [LI, WANG, DR_CHEN, AUDREY, ROOT])
@pytest.mark.parametrize("action", ["task.submit", "task.ask", "task.run"])
def test_only_researchers_run_tasks(
    active: ProjectState, ctx: Ctx, user: User, action: str
) -> None:
    decision = decide(user, action, active, ctx(task=task_for(active), node_policy=H1_POLICY))
    assert (decision.allow, decision.code) == (False, f"{action}/role")


@pytest.mark.parametrize("action", ["task.submit", "task.ask", "task.run"])
def test_researcher_outside_the_project_is_denied(
    active: ProjectState, ctx: Ctx, action: str
) -> None:
    decision = decide(BOB, action, active, ctx(task=task_for(active), node_policy=H1_POLICY))
    assert decision.code == f"{action}/not-member"


@pytest.mark.parametrize("action", ["task.submit", "task.run"])  # task.ask: DP project
def test_expiry_stops_tasks_at_once(active: ProjectState, ctx: Ctx, action: str) -> None:
    expiry = active.project.expires_at
    task = task_for(active)
    before = decide(
        ALICE,
        action,
        active,
        ctx(now=expiry - timedelta(seconds=1), task=task, node_policy=H1_POLICY),
    )
    at = decide(ALICE, action, active, ctx(now=expiry, task=task, node_policy=H1_POLICY))
    assert before.allow
    assert (at.allow, at.code) == (False, f"{action}/expired")
    assert "expired at 2025-04-01T00:00:00Z" in at.reason


@pytest.mark.parametrize("action", ["task.submit", "task.ask", "task.run"])
def test_revocation_stops_tasks_at_once(active: ProjectState, ctx: Ctx, action: str) -> None:
    revoked = active.revoke(ALICE, "stop", T0)
    task = task_for(active)
    decision = decide(ALICE, action, revoked, ctx(task=task, node_policy=H1_POLICY))
    assert (decision.allow, decision.code) == (False, f"{action}/revoked")


def test_withdrawn_node_is_not_tasked_but_the_other_is(active: ProjectState, ctx: Ctx) -> None:
    state = active.withdraw(LI, "h1", "audit", T0)
    assert run(state, ctx, task_for(state, "h1")).code == "task.run/withdrawn"
    assert run(state, ctx, task_for(state, "h2")).allow


def test_task_before_the_start_is_denied(active: ProjectState, ctx: Ctx) -> None:
    early = active.project.starts_at - timedelta(seconds=1)
    assert run(active, ctx, task_for(active), now=early).code == "task.run/not-started"


def test_node_that_has_not_decided_is_not_tasked(requested: ProjectState, ctx: Ctx) -> None:
    state = requested.approve(WANG, "h2", "ok", T0)
    assert run(state, ctx, task_for(state, "h1")).code == "task.run/not-approved"


@pytest.mark.parametrize("action", ["task.submit", "task.ask", "task.run"])
def test_task_citing_another_contract_hash_is_refused(
    active: ProjectState, ctx: Ctx, action: str
) -> None:
    tampered = task_for(active, contract_hash="0" * 64)
    decision = decide(ALICE, action, active, ctx(task=tampered, node_policy=H1_POLICY))
    assert (decision.allow, decision.code) == (False, f"{action}/contract-mismatch")


def test_task_citing_the_other_nodes_contract_is_refused(active: ProjectState, ctx: Ctx) -> None:
    crossed = task_for(active, "h1", contract_hash=contract_hash(active.project, "h2"))
    assert run(active, ctx, crossed).code == "task.run/contract-mismatch"


def test_node_refuses_when_its_copy_of_the_terms_was_tampered(
    active: ProjectState, ctx: Ctx
) -> None:
    # The hub (or an attacker) widened the variables in the node's copy but kept the
    # recorded approval: the recomputed hash no longer matches what the steward approved.
    widened = active.project.model_copy(
        update={"variables": (*active.project.variables, "note.text")}
    )
    forged = active.model_copy(update={"project": widened})
    task = task_for(active, variables=["age"])
    assert run(forged, ctx, task).code == "task.run/contract-mismatch"


def test_task_for_another_node_is_refused_by_this_node(active: ProjectState, ctx: Ctx) -> None:
    task = task_for(active, "h2")
    assert run(active, ctx, task, node_policy=H1_POLICY).code == "task.run/wrong-node"


def test_node_without_standing_policy_runs_nothing(active: ProjectState, ctx: Ctx) -> None:
    decision = decide(ALICE, "task.run", active, ctx(task=task_for(active)))
    assert decision.code == "task.run/no-policy"


def test_computation_must_be_allowed_by_project_and_node(active: ProjectState, ctx: Ctx) -> None:
    # "histogram": h1 allows it, the project does not.
    assert run(active, ctx, task_for(active, computation="histogram")).code == (
        "task.run/computation"
    )
    # "mean": the project allows it, h2 does not.
    decision = run(active, ctx, task_for(active, "h2", computation="mean"))
    assert decision.code == "task.run/computation"
    assert "standing policy" in decision.reason
    # The hub does not know h2's policy; h2 itself refuses.
    assert decide(
        ALICE, "task.submit", active, ctx(task=task_for(active, "h2", computation="mean"))
    ).allow


def test_purpose_must_be_allowed_by_the_node(active: ProjectState, ctx: Ctx) -> None:
    narrowed = H1_POLICY.model_copy(update={"allowed_purposes": frozenset({Purpose.ETREAT})})
    decision = run(active, ctx, task_for(active), node_policy=narrowed)
    assert decision.code == "task.run/purpose"


def test_variables_outside_the_project_are_refused(active: ProjectState, ctx: Ctx) -> None:
    decision = run(active, ctx, task_for(active, variables=["age", "note.text"]))
    assert decision.code == "task.run/variables"
    assert "note.text" in decision.reason


def test_differential_privacy_budget_is_enforced(active: ProjectState, ctx: Ctx) -> None:
    task = task_for(active, epsilon="0.5")
    within = run(active, ctx, task, epsilon_spent=Decimal("1.5"))
    assert within.allow and within.obligation("dp-epsilon") == "0.5"
    over = run(active, ctx, task, epsilon_spent=Decimal("1.75"))
    assert over.code == "task.run/dp-budget"
    assert "only 0.25 of the project's budget is left" in over.reason


def test_session_statistics_are_checked_again_and_refused_on_a_dp_project(
    active: ProjectState, ctx: Ctx
) -> None:
    """Each further statistic of a session would spend budget the researcher did not sign
    for; the hub refuses sessions on DP projects (one query at a time there)."""
    for task in (task_for(active, epsilon="0.1"), task_for(active)):
        decision = decide(ALICE, "task.ask", active, ctx(task=task))
        assert (decision.allow, decision.code) == (False, "task.ask/dp-session")
    project = active.project.model_copy(
        update={"disclosure": active.project.disclosure.model_copy(update={"dp_epsilon": None})}
    )
    plain = ProjectState.request(project, T0 - timedelta(days=40)).approve(
        LI, "h1", "ok", T0 - timedelta(days=35)
    )
    allowed = decide(ALICE, "task.ask", plain, ctx(task=task_for(plain)))
    assert allowed.allow and allowed.obligation("min-cell-size") == "5", allowed.reason
    expired = ctx(now=project.expires_at, task=task_for(plain))
    assert decide(ALICE, "task.ask", plain, expired).code == "task.ask/expired"


def test_dp_task_on_a_project_without_budget_is_refused(requested: ProjectState, ctx: Ctx) -> None:
    project = requested.project.model_copy(
        update={"disclosure": requested.project.disclosure.model_copy(update={"dp_epsilon": None})}
    )
    state = ProjectState.request(project, T0 - timedelta(days=40)).approve(
        LI, "h1", "ok", T0 - timedelta(days=35)
    )
    decision = run(state, ctx, task_for(state, epsilon="0.1"))
    assert decision.code == "task.run/dp-not-agreed"


def test_task_naming_another_project_is_refused(active: ProjectState, ctx: Ctx) -> None:
    decision = run(active, ctx, task_for(active, project_id="another-one"))
    assert decision.code == "task.run/wrong-project"


def test_missing_task_is_malformed(active: ProjectState, ctx: Ctx) -> None:
    decision = decide(ALICE, "task.run", active, ctx(node_policy=H1_POLICY))
    assert decision.code == "task.run/malformed"


@settings(max_examples=60, deadline=None)
@given(
    project_k=st.integers(min_value=1, max_value=100_000),
    node_floor=st.integers(min_value=1, max_value=100_000),
)
def test_effective_min_cell_size_is_never_below_the_node_floor(
    project_k: int, node_floor: int
) -> None:
    project = Project.parse({**project_terms(), "disclosure": {"min_cell_size": project_k}})
    state = ProjectState.request(project, T0 - timedelta(days=40)).approve(
        LI, "h1", "ok", T0 - timedelta(days=35)
    )
    policy = NodePolicy(
        node="h1",
        min_cell_floor=node_floor,
        allowed_purposes=frozenset({Purpose.HRESCH}),
        allowed_computations=frozenset({"count"}),
    )
    context = Context(now=T0, recorder=MemoryRecorder(), node_policy=policy, task=task_for(state))
    decision = decide(ALICE, "task.run", state, context)
    assert decision.allow, decision.reason
    assert decision.obligation("min-cell-size") == str(max(project_k, node_floor))
    approval = decide(
        LI,
        "project.approve",
        ProjectState.request(project, T0),
        Context(now=T0, recorder=MemoryRecorder(), node_policy=policy, reason="ok"),
    )
    assert approval.obligation("min-cell-size") == str(max(project_k, node_floor))
