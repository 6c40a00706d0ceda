"""Project terms: validation at the boundary, and the canonical contract hash."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medspace.policy import (
    PROJECT_PURPOSES,
    Project,
    ProjectError,
    Purpose,
    contract_bytes,
    contract_hash,
)

from ._data import project_terms


def test_valid_terms_parse_with_sorted_lists_and_utc_times() -> None:
    project = Project.parse(
        project_terms(nodes=["h2", "h1"], expires_at="2025-04-01T08:00:00.75+08:00")
    )
    assert project.nodes == ("h1", "h2")
    assert project.variables == ("age", "measurement:LOINC:4548-4", "sex")
    assert project.expires_at.isoformat() == "2025-04-01T00:00:00+00:00"
    assert project.disclosure.dp_epsilon == Decimal(2)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": "X"}, "id: String should match pattern"),  # uppercase, too short
        ({"purpose": "ETREAT"}, "is for patient care"),  # a care purpose, not a project one
        ({"purpose": "FOO"}, "purpose: Input should be"),  # not an HL7 ActReason code we know
        ({"cohort": {"bmi_over": 27.5}}, "is a float"),  # floats break canonical hashing
        ({"cohort": {}}, "cohort: Dictionary should have at least 1 item"),  # empty cohort
        ({"nodes": ["h1", "h1"]}, "lists an item twice"),  # duplicate node
        ({"nodes": ["H1"]}, "invalid node name"),  # malformed node
        ({"nodes": []}, "nodes: Tuple should have at least 1 item"),  # no node
        ({"computations": ["Count!"]}, "String should match pattern"),  # malformed kind
        ({"members": ["alice"]}, "the owner is a member already"),  # owner listed twice
        ({"expires_at": "2025-01-01T00:00:00Z"}, "expires_at must be after starts_at"),
        ({"starts_at": "2025-02-01T00:00:00"}, "should have timezone info"),  # naive time
        ({"disclosure": {"min_cell_size": 0}}, "greater than or equal to 1"),  # k = 0
        ({"disclosure": {"min_cell_size": 5, "dp_epsilon": "0"}}, "greater than 0"),
        ({"surprise": 1}, "surprise: Extra inputs are not permitted"),  # unknown field
    ],
)
def test_invalid_terms_are_refused_with_the_field_named(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ProjectError, match=message):
        Project.parse(project_terms(**changes))


def test_error_messages_never_echo_input_values() -> None:
    secret = "Zhang San 13800138000"
    with pytest.raises(ProjectError) as caught:
        Project.parse(project_terms(id=secret, cohort={"name": secret, "w": 1.5}, nodes=[secret]))
    assert "Zhang" not in str(caught.value)
    assert "13800138000" not in str(caught.value)


def test_only_research_and_operations_purposes_make_projects() -> None:
    assert Purpose.HRESCH in PROJECT_PURPOSES
    assert not {Purpose.ETREAT, Purpose.BTG, Purpose.TREAT} & PROJECT_PURPOSES
    assert Purpose.HRESCH.meaning.startswith("healthcare research")


def test_contract_is_canonical_json_of_the_terms_for_one_node(project: Project) -> None:
    data = contract_bytes(project, "h1")
    terms = json.loads(data)
    assert data == json.dumps(terms, sort_keys=True, separators=(",", ":")).encode()
    assert terms["contract"] == "medspace-dua-v1"
    assert terms["node"] == "h1"
    assert terms["project"]["disclosure"] == {"dp_epsilon": "2", "min_cell_size": 5}
    assert terms["project"]["expires_at"] == "2025-04-01T00:00:00Z"
    assert contract_hash(project, "h1") == hashlib.sha256(data).hexdigest()


def test_contract_hash_is_the_same_however_the_terms_were_written() -> None:
    a = Project.parse(project_terms())
    b = Project.parse(
        project_terms(
            nodes=["h2", "h1"],
            variables=["sex", "measurement:LOINC:4548-4", "age"],
            disclosure={"dp_epsilon": "2.000", "min_cell_size": 5},
            starts_at="2025-02-01T08:00:00+08:00",
        )
    )
    assert contract_hash(a, "h1") == contract_hash(b, "h1")


def test_contract_hash_differs_per_node(project: Project) -> None:
    assert contract_hash(project, "h1") != contract_hash(project, "h2")


def test_contract_for_a_node_outside_the_project_is_refused(project: Project) -> None:
    with pytest.raises(ProjectError, match="does not take part"):
        contract_hash(project, "h3")


def test_contract_hash_survives_a_json_round_trip(project: Project) -> None:
    again = Project.model_validate_json(project.model_dump_json())
    assert contract_hash(again, "h2") == contract_hash(project, "h2")


_CHANGES = st.sampled_from(
    [
        {"title": "Another title"},
        {"description": "HbA1c trajectories after insulin start."},
        {"cohort": {"condition": {"system": "ICD-10", "prefix": "E10"}, "min_age": 18}},
        {"variables": ["age", "sex"]},
        {"computations": ["count"]},
        {"disclosure": {"min_cell_size": 4, "dp_epsilon": "2"}},
        {"disclosure": {"min_cell_size": 5, "dp_epsilon": "2.5"}},
        {"disclosure": {"min_cell_size": 5}},
        {"members": []},
        {"purpose": "PUBHLTH"},
        {"nodes": ["h1", "h2", "h3"]},
        {"expires_at": "2025-04-01T00:00:01Z"},
        {"starts_at": "2025-01-31T23:59:59Z"},
    ]
)


@settings(max_examples=40, deadline=None)
@given(change=_CHANGES)
def test_any_change_of_terms_changes_the_contract_hash(change: dict[str, Any]) -> None:
    original = Project.parse(project_terms())
    changed = Project.parse(project_terms(**change))
    assert contract_hash(changed, "h1") != contract_hash(original, "h1")
