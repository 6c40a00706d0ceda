"""THE policy decision point: `decide(actor, action, resource, context) -> Decision`.

Used by hub and node alike. Deny by default: an action without a rule, an actor that is
not an authenticated user, or a malformed request is denied. Every decision, allow or
deny, goes to `context.recorder` before it is returned; if recording fails the caller
gets `RecordError` and no decision at all.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from medspace.identity import User
from medspace.policy import _access_rules, _project_rules, _task_rules  # noqa: F401 (register)
from medspace.policy.decision import (
    Context,
    Decision,
    DecisionRecord,
    LookupRequest,
    actor_label,
    digest_text,
)
from medspace.policy.errors import ProjectError, RecordError
from medspace.policy.lifecycle import ProjectState
from medspace.policy.project import Project
from medspace.policy.registry import ACTION_NAME, DEFAULT_RULES, RuleRegistry, deny

log = logging.getLogger(__name__)


def _record(actor: object, action: str, resource: object, context: Context, d: Decision) -> None:
    name, role = actor_label(actor)
    project = purpose = None
    artefacts: dict[str, str] = {}
    if isinstance(resource, ProjectState):
        resource = resource.project
    if isinstance(resource, Project):
        project, purpose = resource.id, resource.purpose.value
    if isinstance(resource, LookupRequest):
        purpose = resource.purpose.value
        artefacts["justification"] = digest_text(resource.justification)
    node = context.node
    if context.task is not None:
        node = context.task.node
        artefacts["query"] = context.task.digest()
        artefacts["agreement"] = context.task.contract_hash
    if context.node_policy is not None:
        node = context.node_policy.node
    agreement = d.obligation("contract-hash")
    if agreement is not None:
        artefacts["agreement"] = agreement
    if node is None and isinstance(actor, User):
        node = actor.node
    record = DecisionRecord(
        action=action if ACTION_NAME.fullmatch(action) else "invalid",
        actor=name,
        role=role,
        allow=d.allow,
        code=d.code,
        at=context.now,
        node=node,
        project=project,
        purpose=purpose,
        artefacts=tuple(sorted(artefacts.items())),
    )
    try:
        context.recorder.record(record)
    except Exception as exc:  # any failure: the decision must not take effect
        raise RecordError(
            "could not record the policy decision in the ledger, so it was not taken; "
            "check the ledger and retry"
        ) from exc


class PolicyEngine:
    """Decides with the rules of `registry` (MedSpace's own by default)."""

    def __init__(self, registry: RuleRegistry = DEFAULT_RULES) -> None:
        self._registry = registry

    def decide(self, actor: object, action: str, resource: object, context: Context) -> Decision:
        """Decide whether `actor` may take `action` on `resource`; record and return it.

        Raises `RecordError` if the decision cannot be recorded.
        """
        decision = self._evaluate(actor, action, resource, context)
        label = action if ACTION_NAME.fullmatch(action) else "invalid-action"
        decision = replace(decision, code=f"{label}/{decision.code}")
        _record(actor, action, resource, context, decision)
        return decision

    def _evaluate(self, actor: object, action: str, resource: object, context: Context) -> Decision:
        rule = self._registry.get(action) if isinstance(action, str) else None
        if rule is None:
            shown = action if isinstance(action, str) and ACTION_NAME.fullmatch(action) else "?"
            return deny("default-deny", f"no rule allows {shown!r}; denied by default")
        if not isinstance(actor, User):
            return deny("unauthenticated", "no authenticated user; log in and retry")
        try:
            return rule(actor, resource, context)
        except ProjectError as exc:
            return deny("invalid", str(exc))


_DEFAULT_ENGINE = PolicyEngine()


def decide(actor: object, action: str, resource: object, context: Context) -> Decision:
    """Decide with MedSpace's rules: deny by default, every decision recorded.

    `actor` is the authenticated `User`; `resource` the project terms (project.create),
    the `ProjectState` (other project and task actions), a `LookupRequest` (lookup) or
    None (ledger.read). Raises `RecordError` if the decision cannot be recorded.
    """
    return _DEFAULT_ENGINE.decide(actor, action, resource, context)


class UnsafeAllowAllForTests(PolicyEngine):
    """Allows EVERYTHING. Only for tests of other components that need a yes; never
    wire it into a hub or node. Each use logs a warning and is still recorded."""

    def _evaluate(self, actor: object, action: str, resource: object, context: Context) -> Decision:
        log.warning("UnsafeAllowAllForTests allowed %s without any policy check", action)
        return Decision(True, "UNSAFE: allow-all test policy, no check was made", (), "unsafe")
