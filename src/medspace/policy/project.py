"""Projects (data-use agreements) and their contract hash.

A project's terms are what a steward approves. At approval the terms for that node are
serialised as RFC 8785 canonical JSON (no floats: the DP budget is a fixed-point decimal
string; times are UTC to the second) and hashed with SHA-256: the *contract hash*. The
hash goes into the ledger with the approval, and every task must cite it; a node refuses
a task whose hash differs from the one it computes from its own copy of the terms.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from medspace.frozen import freeze, thaw
from medspace.identity import IdentityError, Role, User, check_node_name
from medspace.ledger.canonical import JSONValue, canonical_bytes
from medspace.ledger.errors import CanonicalError
from medspace.memo import by_identity
from medspace.policy._validation import parse
from medspace.policy.errors import ProjectError
from medspace.policy.purposes import PROJECT_PURPOSES, Purpose

CONTRACT_VERSION = "medspace-dua-v1"
MAX_COHORT_BYTES = 64 * 1024

ProjectId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{2,63}$")]
Variable = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.:/-]{0,127}$")]
ComputationKind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]{0,63}$")]


def utc_text(moment: datetime) -> str:
    """A UTC time as RFC 3339 to the second, e.g. 2025-03-01T09:00:00Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decimal_text(value: Decimal) -> str:
    """A decimal in plain fixed-point form without trailing zeros ("1.5", "10", "0.25")."""
    return format(value.normalize(), "f")


def _sorted_unique(values: tuple[str, ...], what: str) -> tuple[str, ...]:
    if len(set(values)) != len(values):
        raise ValueError(f"{what} lists an item twice; give each once")
    return tuple(sorted(values))


class Disclosure(BaseModel):
    """Disclosure settings: the smallest cell a result may show, and the differential
    privacy budget (total epsilon) when DP is used (None: DP not used)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_cell_size: int = Field(ge=1, le=100_000)
    dp_epsilon: Decimal | None = Field(default=None, gt=0, le=100, decimal_places=6)


class Project(BaseModel):
    """A data-use agreement as filed by a researcher: the terms stewards approve.

    Lists are kept sorted (their order means nothing) and may not repeat an item; times
    are UTC to the second. Build from untrusted input with `Project.parse`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: ProjectId
    title: str = Field(min_length=1, max_length=200)
    owner: str
    members: tuple[str, ...] = ()
    purpose: Purpose
    description: str = Field(min_length=1, max_length=10_000)
    cohort: dict[str, Any] = Field(min_length=1)
    variables: tuple[Variable, ...] = Field(min_length=1, max_length=1000)
    computations: tuple[ComputationKind, ...] = Field(min_length=1, max_length=100)
    disclosure: Disclosure
    nodes: tuple[str, ...] = Field(min_length=1, max_length=1000)
    quorum: int | None = Field(default=None, ge=2, le=1000)
    starts_at: AwareDatetime
    expires_at: AwareDatetime

    @classmethod
    def parse(cls, data: Any) -> Project:
        """Validate untrusted input; raises `ProjectError` naming each bad field."""
        return parse(cls, data, "project")

    @field_validator("owner")
    @classmethod
    def _owner_is_a_researcher_name(cls, owner: str) -> str:
        try:
            User(owner, Role.RESEARCHER)
        except IdentityError as exc:
            raise ValueError(str(exc)) from None
        return owner

    @field_validator("members")
    @classmethod
    def _members_are_researcher_names(cls, members: tuple[str, ...]) -> tuple[str, ...]:
        for member in members:
            cls._owner_is_a_researcher_name(member)
        return _sorted_unique(members, "members")

    @field_validator("purpose")
    @classmethod
    def _purpose_fits_a_project(cls, purpose: Purpose) -> Purpose:
        if purpose not in PROJECT_PURPOSES:
            allowed = ", ".join(sorted(PROJECT_PURPOSES))
            raise ValueError(f"purpose {purpose.value} is for patient care; use one of {allowed}")
        return purpose

    @field_validator("cohort")
    @classmethod
    def _cohort_is_canonical_json(cls, cohort: dict[str, Any]) -> dict[str, Any]:
        try:
            canonical_bytes(cohort, limit=MAX_COHORT_BYTES)
        except CanonicalError as exc:
            raise ValueError(str(exc)) from None
        # Frozen at any depth: a node remembers the contract hash per project object
        # (`contract_hash`), which a cohort changed in place would leave stale.
        frozen: dict[str, Any] = freeze(cohort)
        return frozen

    @field_validator("variables", "computations")
    @classmethod
    def _sorted_lists(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return _sorted_unique(values, "list")

    @field_validator("nodes")
    @classmethod
    def _node_names(cls, nodes: tuple[str, ...]) -> tuple[str, ...]:
        for node in nodes:
            try:
                check_node_name(node)
            except IdentityError as exc:
                raise ValueError(str(exc)) from None
        return _sorted_unique(nodes, "nodes")

    @field_validator("starts_at", "expires_at")
    @classmethod
    def _utc_to_the_second(cls, moment: datetime) -> datetime:
        return moment.astimezone(UTC).replace(microsecond=0)

    @model_validator(mode="after")
    def _consistent(self) -> Project:
        if self.expires_at <= self.starts_at:
            raise ValueError("expires_at must be after starts_at")
        if self.owner in self.members:
            raise ValueError("the owner is a member already; do not list them in members")
        if self.quorum is not None and self.quorum > len(self.nodes):
            raise ValueError("quorum must not exceed the number of nodes in the project")
        return self

    def answer_quorum(self) -> int:
        """The fewest answering nodes a federated result needs: `quorum` if set, else 2
        (or every node when the project has fewer). A sum over one node is that node's
        own value, so analytics refuse results from fewer than 2 nodes whatever this says.
        """
        return self.quorum if self.quorum is not None else min(2, len(self.nodes))

    def may_submit(self, name: str) -> bool:
        """True if `name` is the owner or a member (the researchers who may task it)."""
        return name == self.owner or name in self.members

    def contract_terms(self, node: str) -> dict[str, JSONValue]:
        """The terms a steward of `node` approves, as a JSON value. Raises `ProjectError`
        if `node` does not take part in the project."""
        if node not in self.nodes:
            raise ProjectError(f"node {node!r} does not take part in project {self.id!r}")
        dp = self.disclosure.dp_epsilon
        return {
            "contract": CONTRACT_VERSION,
            "node": node,
            "project": {
                "id": self.id,
                "title": self.title,
                "owner": self.owner,
                "members": list(self.members),
                "purpose": self.purpose.value,
                "description": self.description,
                "cohort": thaw(self.cohort),
                "variables": list(self.variables),
                "computations": list(self.computations),
                "disclosure": {
                    "min_cell_size": self.disclosure.min_cell_size,
                    "dp_epsilon": None if dp is None else decimal_text(dp),
                },
                "nodes": list(self.nodes),
                "quorum": self.answer_quorum(),
                "starts_at": utc_text(self.starts_at),
                "expires_at": utc_text(self.expires_at),
            },
        }


def contract_bytes(project: Project, node: str) -> bytes:
    """RFC 8785 canonical JSON of `project.contract_terms(node)`."""
    return canonical_bytes(project.contract_terms(node))


@by_identity()
def contract_hash(project: Project, node: str) -> str:
    """SHA-256 (lowercase hex) of the canonical terms approved for `node`.

    Raises `ProjectError` if `node` does not take part in the project. Remembered per
    project object (every task a node decides on checks it): a `Project` is frozen, its
    `cohort` too, at any depth (`medspace.frozen`).
    """
    return hashlib.sha256(contract_bytes(project, node)).hexdigest()
