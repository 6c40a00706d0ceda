"""Shared test data for policy tests: people, project terms, node policies, a fixed time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from medspace.identity import Role, User
from medspace.policy import NodePolicy, Purpose

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)

ALICE = User("alice", Role.RESEARCHER)  # owns the project
CAROL = User("carol", Role.RESEARCHER)  # member of the project
BOB = User("bob", Role.RESEARCHER)  # neither owner nor member
LI = User("steward.li", Role.STEWARD, "h1")
WANG = User("steward.wang", Role.STEWARD, "h2")
ZHAO = User("steward.zhao", Role.STEWARD, "h3")  # steward of a node not in the project
DR_CHEN = User("dr.chen", Role.CLINICIAN, "h1")
AUDREY = User("audrey", Role.AUDITOR)
ROOT = User("root", Role.ADMIN)
EVERYONE = (ALICE, CAROL, BOB, LI, WANG, ZHAO, DR_CHEN, AUDREY, ROOT)


def project_terms(**changes: Any) -> dict[str, Any]:
    """Valid project terms as untrusted input would carry them, with `changes` applied."""
    terms: dict[str, Any] = {
        "id": "t2d-outcomes",
        "title": "Type 2 diabetes outcomes",
        "owner": "alice",
        "members": ["carol"],
        "purpose": "HRESCH",
        "description": "HbA1c trajectories after metformin start.",
        "cohort": {"condition": {"system": "ICD-10", "prefix": "E11"}, "min_age": 18},
        "variables": ["age", "sex", "measurement:LOINC:4548-4"],
        "computations": ["count", "mean"],
        "disclosure": {"min_cell_size": 5, "dp_epsilon": "2"},
        "nodes": ["h1", "h2"],
        "starts_at": "2025-02-01T00:00:00Z",
        "expires_at": "2025-04-01T00:00:00Z",
    }
    terms.update(changes)
    return terms


H1_POLICY = NodePolicy(
    node="h1",
    min_cell_floor=10,
    allowed_purposes=frozenset({Purpose.HRESCH, Purpose.ETREAT}),
    allowed_computations=frozenset({"count", "mean", "histogram"}),
    break_glass_allowed=False,
)
H2_POLICY = NodePolicy(
    node="h2",
    min_cell_floor=3,
    allowed_purposes=frozenset({Purpose.HRESCH, Purpose.ETREAT}),
    allowed_computations=frozenset({"count"}),
    break_glass_allowed=True,
)
