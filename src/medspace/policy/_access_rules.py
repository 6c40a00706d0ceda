"""Rules for reading the ledger and for clinicians' cross-hospital lookups.

`data.export` has deliberately no rule: row-level export is denied by default.
"""

from __future__ import annotations

from medspace.identity import Role, User
from medspace.policy.decision import Context, Decision, LookupRequest, Obligation
from medspace.policy.purposes import Purpose
from medspace.policy.registry import DEFAULT_RULES, allow, deny, wrong_role

MIN_JUSTIFICATION = 10
"""Characters a lookup justification needs at least (about one short sentence)."""


@DEFAULT_RULES.register("ledger.read")
def _read_ledger(actor: User, resource: object, context: Context) -> Decision:
    if actor.role in (Role.AUDITOR, Role.ADMIN):
        return allow(f"{actor.role.value}s may read the whole ledger", Obligation("scope", "all"))
    if actor.role is Role.STEWARD:
        return allow(
            f"a steward reads the ledger entries of their node ({actor.node})",
            Obligation("scope", f"node:{actor.node}"),
        )
    return wrong_role(actor, "read the ledger", "auditors, admins and stewards")


@DEFAULT_RULES.register("lookup")
def _lookup(actor: User, resource: object, context: Context) -> Decision:
    if actor.role is not Role.CLINICIAN:
        return wrong_role(actor, "look up a patient", "a clinician bound to a node")
    if not isinstance(resource, LookupRequest):
        return deny("malformed", "lookup needs the purpose and the justification")
    if resource.requester is not None and resource.requester != actor.node:
        return deny(
            "wrong-node",
            f"a clinician of {actor.node} may look up patients only from their own node",
        )
    policy = context.node_policy
    if policy is None:
        return deny("no-policy", "this node has no standing policy loaded; it answers no lookups")
    if len(resource.justification.strip()) < MIN_JUSTIFICATION:
        return deny(
            "justification",
            f"write a justification of at least {MIN_JUSTIFICATION} characters saying why "
            "this patient's records are needed now",
        )
    answer = (
        Obligation("minimum-necessary", "summary"),
        Obligation("seal-to", str(actor.node)),
    )
    if resource.purpose is Purpose.ETREAT:
        if Purpose.ETREAT not in policy.allowed_purposes:
            return deny("purpose", f"node {policy.node} does not answer emergency lookups")
        consent, pseudonym = context.consent, resource.pseudonym
        if (
            consent is not None
            and pseudonym is not None
            and consent.opted_out(pseudonym, Purpose.ETREAT)
        ):
            return deny(
                "opted-out",
                "patient consent at this node does not allow this purpose; break-glass "
                "(BTG) is the only route, where the node allows it",
            )
        return allow("emergency lookup allowed; it is recorded", *answer)
    if resource.purpose is Purpose.BTG:
        if not policy.break_glass_allowed:
            return deny(
                "break-glass-disabled",
                f"node {policy.node} does not allow break-glass; use ETREAT",
            )
        # Break-glass overrides opt-outs by definition; the steward reviews every use.
        return allow(
            "break-glass lookup allowed; the node's steward will review it",
            Obligation("review", "steward"),
            *answer,
        )
    return deny(
        "purpose",
        "a lookup needs purpose ETREAT, or BTG where the node allows break-glass",
    )
