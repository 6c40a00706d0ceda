"""The project lifecycle: requested -> approved or denied per node -> active -> expired or
revoked.

Each participating node's steward approves or denies for their node, with a reason; a
decision is final (changed terms are a new project). A steward may later withdraw their
node's approval; the owner or an admin may revoke the whole project. A project is
*active* between its start and expiry, unless revoked, on every node that approved it.
Expiry and revocation stop new tasks at once: every check takes `now`.

The `*_refusal` methods say why a step is not possible (or None); the policy rules turn
them into denials, and the transition methods raise them as `ProjectError`, so the
lifecycle rules live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from medspace.identity import Role, User
from medspace.policy._validation import parse, parse_json
from medspace.policy.errors import ProjectError
from medspace.policy.project import Project, contract_hash, utc_text

MAX_REASON = 2000
MAX_SIGNED_ENTRY = 90_000  # base64 of a ledger entry of at most 64 KiB

SignedEntryText = Annotated[
    str | None, Field(max_length=MAX_SIGNED_ENTRY, pattern=r"^[A-Za-z0-9+/=]+$")
]
"""The ledger entry the deciding user signed (base64 of its body), kept with the decision
so that a node can check it against the steward keys it pinned (the hub cannot forge it)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a step is refused: a short machine code and a message that says what to do."""

    code: str
    message: str


class Verdict(StrEnum):
    """A node's standing on a project."""

    APPROVED = "approved"
    DENIED = "denied"
    WITHDRAWN = "withdrawn"


class ProjectStatus(StrEnum):
    """Where a project stands at a given moment."""

    REQUESTED = "requested"  # waiting for stewards
    APPROVED = "approved"  # approved by at least one node, before its start
    ACTIVE = "active"  # approved by at least one node, between start and expiry
    DENIED = "denied"  # every node denied or withdrew
    EXPIRED = "expired"
    REVOKED = "revoked"


class NodeVerdict(BaseModel):
    """One node's decision: who decided, why, when, and the contract hash approved."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node: str
    verdict: Verdict
    steward: str
    reason: str = Field(min_length=1, max_length=MAX_REASON)
    at: AwareDatetime
    contract_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    entry: SignedEntryText = None

    @model_validator(mode="after")
    def _hash_when_approved(self) -> NodeVerdict:
        if (self.verdict is not Verdict.DENIED) != (self.contract_hash is not None):
            raise ValueError("an approval (or withdrawn approval) records its contract hash")
        return self


class Revocation(BaseModel):
    """Who revoked the whole project, why and when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    by: str
    role: Role
    reason: str = Field(min_length=1, max_length=MAX_REASON)
    at: AwareDatetime
    entry: SignedEntryText = None


def _reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise ProjectError("give a reason; approvals, denials and revocations need one")
    if len(reason) > MAX_REASON:
        raise ProjectError(f"reason too long; keep it under {MAX_REASON} characters")
    return reason.strip()


class ProjectState(BaseModel):
    """A project's terms plus every node's verdict and any revocation. Immutable: each
    transition returns a new state. Build from stored JSON with `ProjectState.parse`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project: Project
    requested_at: AwareDatetime
    verdicts: tuple[NodeVerdict, ...] = ()
    revocation: Revocation | None = None

    @classmethod
    def request(cls, project: Project, now: datetime) -> ProjectState:
        """A newly filed project, waiting for every node's steward."""
        return cls(project=project, requested_at=now)

    @classmethod
    def parse(cls, data: Any) -> ProjectState:
        """Validate untrusted input; raises `ProjectError` naming each bad field."""
        return parse(cls, data, "project state")

    @classmethod
    def parse_json(cls, text: str | bytes) -> ProjectState:
        """Validate stored or received JSON; raises `ProjectError` naming each bad field."""
        return parse_json(cls, text, "project state")

    @field_validator("verdicts")
    @classmethod
    def _one_per_node(cls, verdicts: tuple[NodeVerdict, ...]) -> tuple[NodeVerdict, ...]:
        nodes = [v.node for v in verdicts]
        if len(set(nodes)) != len(nodes):
            raise ValueError("a node has two verdicts; keep one per node")
        return tuple(sorted(verdicts, key=lambda v: v.node))

    @model_validator(mode="after")
    def _verdicts_for_participants(self) -> ProjectState:
        if any(v.node not in self.project.nodes for v in self.verdicts):
            raise ValueError("a verdict names a node that does not take part in the project")
        return self

    def verdict(self, node: str) -> NodeVerdict | None:
        """`node`'s verdict, or None while it is pending."""
        return next((v for v in self.verdicts if v.node == node), None)

    def approved_nodes(self) -> tuple[str, ...]:
        """Nodes whose approval stands (not denied, not withdrawn), sorted."""
        return tuple(v.node for v in self.verdicts if v.verdict is Verdict.APPROVED)

    def status(self, now: datetime) -> ProjectStatus:
        """The project's status at `now`."""
        if self.revocation is not None:
            return ProjectStatus.REVOKED
        if now >= self.project.expires_at:
            return ProjectStatus.EXPIRED
        if self.approved_nodes():
            if now < self.project.starts_at:
                return ProjectStatus.APPROVED
            return ProjectStatus.ACTIVE
        if len(self.verdicts) == len(self.project.nodes):
            return ProjectStatus.DENIED
        return ProjectStatus.REQUESTED

    def _closed(self, now: datetime) -> Refusal | None:
        if self.revocation is not None:
            return Refusal("revoked", f"project {self.project.id} was revoked; file a new one")
        if now >= self.project.expires_at:
            when = utc_text(self.project.expires_at)
            return Refusal("expired", f"project {self.project.id} expired at {when}")
        return None

    def decision_refusal(self, actor: User, node: str, now: datetime) -> Refusal | None:
        """Why `actor` may not approve or deny for `node` now, or None if they may."""
        if actor.role is not Role.STEWARD:
            return Refusal("role", f"only a steward may approve or deny; a {actor.role} may not")
        if actor.node != node:
            return Refusal(
                "other-node",
                f"a steward decides only for their own node ({actor.node}), not for {node}",
            )
        if node not in self.project.nodes:
            return Refusal(
                "not-participant", f"node {node} does not take part in project {self.project.id}"
            )
        closed = self._closed(now)
        if closed is not None:
            return closed
        verdict = self.verdict(node)
        if verdict is not None:
            return Refusal(
                "already-decided",
                f"node {node} already {verdict.verdict.value} this project; decisions are "
                "final (withdraw an approval, or ask for a new project with changed terms)",
            )
        return None

    def withdrawal_refusal(self, actor: User, node: str, now: datetime) -> Refusal | None:
        """Why `actor` may not withdraw `node`'s approval now, or None if they may."""
        if actor.role is not Role.STEWARD:
            return Refusal("role", f"only a steward may withdraw a node; a {actor.role} may not")
        if actor.node != node:
            return Refusal(
                "other-node",
                f"a steward withdraws only their own node ({actor.node}), not {node}",
            )
        closed = self._closed(now)
        if closed is not None:
            return closed
        verdict = self.verdict(node)
        if verdict is None or verdict.verdict is not Verdict.APPROVED:
            return Refusal("not-approved", f"node {node} has no standing approval to withdraw")
        return None

    def revocation_refusal(self, actor: User, now: datetime) -> Refusal | None:
        """Why `actor` may not revoke the whole project now, or None if they may."""
        owner = actor.role is Role.RESEARCHER and actor.name == self.project.owner
        if not (owner or actor.role is Role.ADMIN):
            return Refusal(
                "role",
                "only the project's owner or an admin may revoke the project; a steward "
                "withdraws their own node instead",
            )
        return self._closed(now)

    def task_refusal(self, node: str, now: datetime) -> Refusal | None:
        """Why `node` may not be given a new task of this project now, or None."""
        closed = self._closed(now)
        if closed is not None:
            return closed
        if now < self.project.starts_at:
            when = utc_text(self.project.starts_at)
            return Refusal("not-started", f"project {self.project.id} starts at {when}")
        verdict = self.verdict(node)
        if verdict is None:
            if node not in self.project.nodes:
                return Refusal("not-participant", f"node {node} does not take part in this project")
            return Refusal("not-approved", f"node {node} has not approved this project yet")
        if verdict.verdict is Verdict.DENIED:
            return Refusal("denied", f"node {node} denied this project; it cannot be tasked")
        if verdict.verdict is Verdict.WITHDRAWN:
            return Refusal("withdrawn", f"node {node} withdrew its approval; it cannot be tasked")
        return None

    def _with_verdict(self, verdict: NodeVerdict) -> ProjectState:
        others = tuple(v for v in self.verdicts if v.node != verdict.node)
        return self.model_copy(update={"verdicts": tuple(sorted((*others, verdict), key=_node))})

    def approve(
        self, actor: User, node: str, reason: str, now: datetime, *, entry: str | None = None
    ) -> ProjectState:
        """`node`'s steward approves; records the contract hash of the terms approved and
        the steward's signed approval entry (`entry`, base64). Raises `ProjectError` when
        refused (see `decision_refusal`)."""
        return self._decide(actor, node, reason, now, Verdict.APPROVED, entry)

    def deny(
        self, actor: User, node: str, reason: str, now: datetime, *, entry: str | None = None
    ) -> ProjectState:
        """`node`'s steward denies. Raises `ProjectError` when refused."""
        return self._decide(actor, node, reason, now, Verdict.DENIED, entry)

    def _decide(
        self,
        actor: User,
        node: str,
        reason: str,
        now: datetime,
        verdict: Verdict,
        entry: str | None,
    ) -> ProjectState:
        refusal = self.decision_refusal(actor, node, now)
        if refusal is not None:
            raise ProjectError(refusal.message)
        digest = contract_hash(self.project, node) if verdict is Verdict.APPROVED else None
        return self._with_verdict(
            NodeVerdict(
                node=node,
                verdict=verdict,
                steward=actor.name,
                reason=_reason(reason),
                at=now.astimezone(UTC),
                contract_hash=digest,
                entry=entry,
            )
        )

    def withdraw(
        self, actor: User, node: str, reason: str, now: datetime, *, entry: str | None = None
    ) -> ProjectState:
        """`node`'s steward withdraws its approval (the node's part of a revocation).
        Raises `ProjectError` when refused (see `withdrawal_refusal`)."""
        refusal = self.withdrawal_refusal(actor, node, now)
        if refusal is not None:
            raise ProjectError(refusal.message)
        approved = self.verdict(node)
        assert approved is not None  # withdrawal_refusal checked it
        return self._with_verdict(
            NodeVerdict(
                node=node,
                verdict=Verdict.WITHDRAWN,
                steward=actor.name,
                reason=_reason(reason),
                at=now.astimezone(UTC),
                contract_hash=approved.contract_hash,
                entry=entry,
            )
        )

    def revoke(
        self, actor: User, reason: str, now: datetime, *, entry: str | None = None
    ) -> ProjectState:
        """Revoke the whole project (owner or admin). Raises `ProjectError` when refused."""
        refusal = self.revocation_refusal(actor, now)
        if refusal is not None:
            raise ProjectError(refusal.message)
        revocation = Revocation(
            by=actor.name,
            role=actor.role,
            reason=_reason(reason),
            at=now.astimezone(UTC),
            entry=entry,
        )
        return self.model_copy(update={"revocation": revocation})


def _node(verdict: NodeVerdict) -> str:
    return verdict.node
