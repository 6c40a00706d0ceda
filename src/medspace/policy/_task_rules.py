"""Rules for tasks: `task.submit` at the hub and `task.run` at the node; `task.ask` at
the hub for each further statistic of an analysis session.

The node never trusts the hub's say-so: `task.run` repeats every hub check on the node's
own copy of the project and adds the node's standing policy: its allowed purposes and
computation kinds, its minimum cell floor, and the contract hash recomputed locally.
"""

from __future__ import annotations

from decimal import Decimal

from medspace.identity import Role, User
from medspace.policy.decision import Context, Decision, Obligation, TaskRequest
from medspace.policy.lifecycle import ProjectState
from medspace.policy.project import contract_hash, decimal_text
from medspace.policy.registry import DEFAULT_RULES, allow, deny, refused, wrong_role


def _common(
    actor: User, resource: object, context: Context, action: str
) -> Decision | tuple[ProjectState, TaskRequest]:
    """The checks hub and node share; a Decision means denied."""
    if actor.role is not Role.RESEARCHER:
        return wrong_role(actor, "run tasks", "a researcher of the project")
    task = context.task
    if not isinstance(resource, ProjectState) or task is None:
        return deny("malformed", f"{action} needs the project's state and the task")
    project = resource.project
    if task.project_id != project.id:
        return deny("wrong-project", "the task names another project than the one checked")
    if not project.may_submit(actor.name):
        return deny("not-member", f"only the owner and members of {project.id} may run tasks")
    refusal = resource.task_refusal(task.node, context.now)
    if refusal is not None:
        return refused(refusal)
    verdict = resource.verdict(task.node)
    if verdict is None or task.contract_hash != verdict.contract_hash:
        return deny(
            "contract-mismatch",
            f"the task cites a contract hash other than the one node {task.node} approved; "
            "fetch the approved contract and resubmit",
        )
    outside = sorted({task.computation, *task.kinds} - set(project.computations))
    if outside:
        return deny(
            "computation",
            f"computation {', '.join(outside)} is not one project {project.id} allows",
        )
    extra = sorted(set(task.variables) - set(project.variables))
    if extra:
        return deny(
            "variables",
            f"the task uses variables the project does not allow: {', '.join(extra)}",
        )
    budget = project.disclosure.dp_epsilon
    if task.epsilon is not None:
        if budget is None:
            return deny("dp-not-agreed", "the project has no differential-privacy budget")
        left = budget - context.epsilon_spent
        if task.epsilon > left:
            return deny(
                "dp-budget",
                f"the task asks for epsilon {decimal_text(task.epsilon)} but only "
                f"{decimal_text(max(left, Decimal(0)))} of the project's budget is left",
            )
    return resource, task


def _dp(task: TaskRequest) -> tuple[Obligation, ...]:
    if task.epsilon is None:
        return ()
    return (Obligation("dp-epsilon", decimal_text(task.epsilon)),)


@DEFAULT_RULES.register("task.submit")
def _submit(actor: User, resource: object, context: Context) -> Decision:
    checked = _common(actor, resource, context, "task.submit")
    if isinstance(checked, Decision):
        return checked
    state, task = checked
    return allow(
        f"task may be sent to node {task.node}; the node checks it again",
        Obligation("contract-hash", task.contract_hash),
        Obligation("min-cell-size", str(state.project.disclosure.min_cell_size)),
        *_dp(task),
    )


@DEFAULT_RULES.register("task.ask")
def _ask(actor: User, resource: object, context: Context) -> Decision:
    """A further statistic of an open analysis session: the hub checks the session's task
    again, as `task.submit` did when the researcher opened it (signed), so a revocation,
    an expiry or a withdrawn approval stops the session at its next statistic. The node
    repeats `task.run` for it."""
    checked = _common(actor, resource, context, "task.ask")
    if isinstance(checked, Decision):
        return checked
    state, task = checked
    if state.project.disclosure.dp_epsilon is not None or task.epsilon is not None:
        return deny(
            "dp-session",
            "analysis sessions are not offered on differential-privacy projects: each "
            "statistic would spend budget; ask one query at a time",
        )
    return allow(
        f"a further statistic of the session may go to node {task.node}",
        Obligation("min-cell-size", str(state.project.disclosure.min_cell_size)),
    )


@DEFAULT_RULES.register("task.run")
def _run(actor: User, resource: object, context: Context) -> Decision:
    policy = context.node_policy
    if policy is None:
        return deny("no-policy", "this node has no standing policy loaded; it runs no tasks")
    checked = _common(actor, resource, context, "task.run")
    if isinstance(checked, Decision):
        return checked
    state, task = checked
    project = state.project
    if task.node != policy.node:
        return deny("wrong-node", f"the task is for node {task.node}, not this node")
    if contract_hash(project, policy.node) != task.contract_hash:
        return deny(
            "contract-mismatch",
            "this node's own copy of the terms does not hash to the approved contract; "
            "refuse the task and tell the steward",
        )
    if project.purpose not in policy.allowed_purposes:
        return deny(
            "purpose",
            f"this node's standing policy does not allow purpose {project.purpose.value}",
        )
    refused_kinds = sorted({task.computation, *task.kinds} - policy.allowed_computations)
    if refused_kinds:
        return deny(
            "computation",
            "this node's standing policy does not allow computation " + ", ".join(refused_kinds),
        )
    floor = policy.effective_min_cell_size(project.disclosure.min_cell_size)
    return allow(
        f"node {policy.node} may run this task of project {project.id}",
        Obligation("min-cell-size", str(floor)),
        Obligation("exclude-opted-out", project.purpose.value),
        Obligation("contract-hash", task.contract_hash),
        *_dp(task),
    )
