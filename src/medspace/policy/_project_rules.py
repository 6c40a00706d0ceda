"""Rules for projects: file, approve, deny, revoke (or withdraw a node), show."""

from __future__ import annotations

from medspace.identity import Role, User
from medspace.policy.decision import Context, Decision, Obligation
from medspace.policy.lifecycle import MAX_REASON, ProjectState
from medspace.policy.project import Project, contract_hash
from medspace.policy.registry import DEFAULT_RULES, allow, deny, refused, wrong_role


def _malformed(action: str, needs: str) -> Decision:
    return deny("malformed", f"{action} needs {needs}; the request did not carry it")


def _missing_reason(context: Context, what: str) -> Decision | None:
    reason = context.reason
    if reason is None or not reason.strip():
        return deny("no-reason", f"give a reason for the {what}; it is kept with the project")
    if len(reason) > MAX_REASON:
        return deny("no-reason", f"the reason is too long; keep it under {MAX_REASON} characters")
    return None


@DEFAULT_RULES.register("project.create")
def _create(actor: User, resource: object, context: Context) -> Decision:
    if actor.role is not Role.RESEARCHER:
        return wrong_role(actor, "file a project", "a researcher")
    if not isinstance(resource, Project):
        return _malformed("project.create", "the project's terms")
    if resource.owner != actor.name:
        return deny("owner", "a researcher files projects in their own name; set owner to yours")
    if resource.expires_at <= context.now:
        return deny("expired", "the project would already have expired; choose a later expiry")
    return allow(
        f"project {resource.id} filed; each node's steward must now approve or deny it",
        *(Obligation("await-approval", node) for node in resource.nodes),
    )


def _decide(actor: User, resource: object, context: Context, approving: bool) -> Decision:
    action = "project.approve" if approving else "project.deny"
    if not isinstance(resource, ProjectState):
        return _malformed(action, "the project's current state")
    node = context.node if context.node is not None else actor.node
    if node is None:
        return wrong_role(actor, "approve or deny", "a steward of a participating node")
    refusal = resource.decision_refusal(actor, node, context.now)
    if refusal is not None:
        return refused(refusal)
    missing = _missing_reason(context, "approval" if approving else "denial")
    if missing is not None:
        return missing
    if not approving:
        return allow(f"steward of {node} may deny project {resource.project.id}")
    project, policy = resource.project, context.node_policy
    if policy is None or policy.node != node:
        return deny("no-policy", f"node {node}'s standing policy is needed to approve; load it")
    if project.purpose not in policy.allowed_purposes:
        return deny(
            "purpose",
            f"node {node}'s standing policy does not allow purpose {project.purpose.value}; "
            "change the standing policy first, or deny the project",
        )
    floor = policy.effective_min_cell_size(project.disclosure.min_cell_size)
    return allow(
        f"steward of {node} may approve project {project.id}",
        Obligation("contract-hash", contract_hash(project, node)),
        Obligation("min-cell-size", str(floor)),
    )


@DEFAULT_RULES.register("project.approve")
def _approve(actor: User, resource: object, context: Context) -> Decision:
    return _decide(actor, resource, context, approving=True)


@DEFAULT_RULES.register("project.deny")
def _deny(actor: User, resource: object, context: Context) -> Decision:
    return _decide(actor, resource, context, approving=False)


@DEFAULT_RULES.register("project.revoke")
def _revoke(actor: User, resource: object, context: Context) -> Decision:
    if not isinstance(resource, ProjectState):
        return _malformed("project.revoke", "the project's current state")
    if actor.role is Role.STEWARD:
        # A steward revokes their own node's part: a withdrawal of its approval.
        node = context.node if context.node is not None else actor.node
        assert node is not None  # a steward is always bound to a node
        refusal = resource.withdrawal_refusal(actor, node, context.now)
        scope = f"node:{node}"
    else:
        refusal = resource.revocation_refusal(actor, context.now)
        scope = "project"
    if refusal is not None:
        return refused(refusal)
    missing = _missing_reason(context, "revocation")
    if missing is not None:
        return missing
    return allow(
        f"{actor.role.value} may revoke project {resource.project.id} ({scope}); "
        "new tasks stop at once",
        Obligation("scope", scope),
    )


@DEFAULT_RULES.register("project.show")
def _show(actor: User, resource: object, context: Context) -> Decision:
    if not isinstance(resource, ProjectState):
        return _malformed("project.show", "the project's current state")
    project = resource.project
    if actor.role in (Role.ADMIN, Role.AUDITOR):
        return allow(f"{actor.role.value}s may see every project")
    if actor.role is Role.RESEARCHER and project.may_submit(actor.name):
        return allow("the project's owner and members may see it")
    if actor.role is Role.STEWARD and actor.node in project.nodes:
        return allow(f"the steward of participating node {actor.node} may see it")
    return deny(
        "not-party",
        f"only parties to project {project.id} (its researchers, the stewards of its nodes), "
        "auditors and admins may see it",
    )
