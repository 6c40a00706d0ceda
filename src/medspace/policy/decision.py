"""What `decide()` takes and returns: requests, context, decisions and their records.

A `Decision` is immutable. Its `reason` is for people (what was wrong, what to do) and
its `code` for machines and the ledger (e.g. "task.run/expired"); neither ever holds
patient data. Obligations are conditions the caller must carry out when allowed, such
as `min-cell-size=10` or `review=steward`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from medspace.identity import IdentityError, User, check_node_name
from medspace.ledger.canonical import canonical_bytes
from medspace.policy._validation import parse
from medspace.policy.consent import Consent
from medspace.policy.errors import PolicyDenied
from medspace.policy.project import ComputationKind, ProjectId, Variable
from medspace.policy.purposes import Purpose
from medspace.policy.standing import NodePolicy


@dataclass(frozen=True, slots=True)
class Obligation:
    """A condition attached to an allow: `name` says what, `value` how much or whom."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Decision:
    """Allow or deny, with a reason for people, a code for machines and obligations."""

    allow: bool
    reason: str
    obligations: tuple[Obligation, ...] = ()
    code: str = ""

    def require(self) -> Decision:
        """Return self if allowed; raise `PolicyDenied` (HTTP 403) with the reason if not."""
        if not self.allow:
            raise PolicyDenied(self.reason, code=self.code)
        return self

    def obligation(self, name: str) -> str | None:
        """The value of obligation `name`, or None if there is none."""
        return next((o.value for o in self.obligations if o.name == name), None)


class TaskRequest(BaseModel):
    """One task for one node, as submitted to the hub and re-checked by the node."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project_id: ProjectId
    node: str
    computation: ComputationKind
    # Further computation kinds one task asks for (a federated query's statistics);
    # each must be allowed like `computation` itself.
    kinds: tuple[ComputationKind, ...] = Field(default=(), max_length=100)
    variables: tuple[Variable, ...] = Field(min_length=1, max_length=1000)
    contract_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    epsilon: Decimal | None = Field(default=None, gt=0, le=100, decimal_places=6)

    @field_validator("node")
    @classmethod
    def _node_name(cls, node: str) -> str:
        try:
            return check_node_name(node)
        except IdentityError as exc:
            raise ValueError(str(exc)) from None

    @classmethod
    def parse(cls, data: Any) -> TaskRequest:
        """Validate an untrusted task payload; raises `ProjectError` naming bad fields."""
        return parse(cls, data, "task")

    def digest(self) -> str:
        """SHA-256 hex of the task's canonical JSON (what the ledger records)."""
        return hashlib.sha256(canonical_bytes(self.model_dump(mode="json"))).hexdigest()


@dataclass(frozen=True, slots=True)
class LookupRequest:
    """A clinician's cross-hospital lookup: purpose, written justification and (at the
    answering node, once linked) the patient's pseudonym there. The justification and
    pseudonym never appear in decisions or records; the record keeps a justification
    digest so a later review can check the text it was shown."""

    purpose: Purpose
    justification: str
    pseudonym: str | None = field(default=None, repr=False)
    requester: str | None = None  # the asking node, when known: the clinician's own

    def __repr__(self) -> str:
        return f"LookupRequest(purpose={self.purpose.value}, justification=<hidden>)"


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """What the ledger keeps of one decision: no free text, no patient data.

    `ledger_fields()` gives the fields of a `medspace.ledger.entry.Entry`.
    """

    action: str
    actor: str
    role: str
    allow: bool
    code: str
    at: datetime
    node: str | None = None
    project: str | None = None
    purpose: str | None = None
    artefacts: tuple[tuple[str, str], ...] = ()

    def ledger_fields(self) -> dict[str, Any]:
        """Keyword arguments for the ledger's `Entry`: type, actor, time, node, project,
        artefacts (as `sha256:<hex>`) and details (decision, reason code, role, purpose)."""
        details: dict[str, Any] = {
            "decision": "allow" if self.allow else "deny",
            "reason": self.code,
            "role": self.role,
        }
        if self.purpose is not None:
            details["purpose"] = self.purpose
        return {
            "type": _ENTRY_TYPES.get(self.action, "policy"),
            "actor": self.actor,
            "time": self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "node": self.node,
            "project": self.project,
            "artefacts": {name: f"sha256:{digest}" for name, digest in self.artefacts},
            "details": details,
        }


# The ledger's entry type for each action; anything else is recorded as "policy".
_ENTRY_TYPES = {
    "project.create": "request",
    "project.approve": "approval",
    "project.deny": "denial",
    "project.revoke": "revocation",
    "project.show": "access",
    "task.submit": "task",
    "task.ask": "task",
    "task.run": "compute",
    "ledger.read": "access",
    "lookup": "lookup",
    "data.export": "export",
}


class DecisionRecorder(Protocol):
    """Where every decision goes (the ledger). Raising refuses the action: a decision
    that cannot be recorded must not take effect."""

    def record(self, record: DecisionRecord) -> None:
        """Store `record` durably, or raise."""
        ...


class MemoryRecorder:
    """Keeps records in a list: for tests, and for callers that forward them in batches."""

    def __init__(self) -> None:
        self.records: list[DecisionRecord] = []

    def record(self, record: DecisionRecord) -> None:
        """Append `record`."""
        self.records.append(record)


@dataclass(frozen=True, slots=True)
class Context:
    """The circumstances of a decision.

    `now` is required (so expiry never depends on the clock of a test machine) and so is
    `recorder` (every decision is recorded). `node` is the node acted for: the node a
    steward approves, denies or withdraws, or the node answering a lookup. `node_policy`
    and `consent` are the deciding node's own. `reason` is the actor's stated reason for
    approvals, denials and revocations. `epsilon_spent` is the project's DP budget used
    so far, as the deciding side counts it.
    """

    now: datetime
    recorder: DecisionRecorder
    node: str | None = None
    node_policy: NodePolicy | None = None
    consent: Consent | None = None
    task: TaskRequest | None = None
    reason: str | None = None
    epsilon_spent: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if self.now.tzinfo is None or self.now.utcoffset() is None:
            raise ValueError("Context.now must be timezone-aware (UTC)")


def digest_text(text: str) -> str:
    """SHA-256 hex of UTF-8 text (justifications are recorded only as this)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def actor_label(actor: object) -> tuple[str, str]:
    """(name, role) of an actor for records, or an 'anonymous' label for non-users."""
    if isinstance(actor, User):
        return actor.name, actor.role.value
    return "anonymous", "none"
