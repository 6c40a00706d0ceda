"""Frozen JSON containers: the dict fields of frozen models cannot change in place, so
what is remembered per model object (`by_identity`) cannot go stale."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from typing import Any

import pytest
from tests.policy._data import project_terms

from medspace.analytics import QuerySpec
from medspace.frozen import FrozenDict, FrozenList, freeze, thaw
from medspace.ledger.canonical import canonical_bytes
from medspace.policy import Project
from medspace.policy.project import contract_hash

COHORT = {"filters": [{"domain": "condition", "system": "ICD-10", "code": "C22*"}]}


def test_a_project_cohort_cannot_be_changed_in_place_at_any_depth() -> None:
    project = Project.parse(project_terms(cohort=COHORT))
    node = project.nodes[0]
    before = contract_hash(project, node)
    changes: list[Callable[[], object]] = [
        lambda: project.cohort.update({"filters": []}),
        lambda: project.cohort.__setitem__("extra", 1),
        lambda: project.cohort["filters"].append({"domain": "drug"}),
        lambda: project.cohort["filters"][0].__setitem__("code", "I21*"),
        lambda: project.cohort["filters"].pop(),
    ]
    for change in changes:
        with pytest.raises(TypeError, match="frozen model"):
            change()
    assert project.cohort == COHORT
    assert contract_hash(project, node) == before


def test_the_contract_terms_are_a_plain_copy_with_the_same_hash() -> None:
    project = Project.parse(project_terms(cohort=COHORT))
    terms = project.contract_terms(project.nodes[0])
    cohort = terms["project"]["cohort"]
    assert type(cohort) is dict and type(cohort["filters"]) is list
    cohort["filters"].append({"domain": "drug"})  # the caller's copy, not the project's
    assert project.cohort == COHORT


def test_a_spec_variables_dict_cannot_be_changed_in_place() -> None:
    spec = QuerySpec.parse(
        {
            "variables": {"age": {"kind": "age"}},
            "statistics": [{"id": "m", "kind": "mean", "variable": "age"}],
        }
    )
    with pytest.raises(TypeError):
        spec.variables["sex"] = spec.variables["age"]
    with pytest.raises(TypeError):
        spec.variables.pop("age")
    with pytest.raises(TypeError):
        QuerySpec.parse({"statistics": [{"id": "n", "kind": "count"}]}).variables.update({})
    assert list(spec.variables) == ["age"]


def test_frozen_models_still_serialise_compare_copy_and_pickle_as_before() -> None:
    project = Project.parse(project_terms(cohort=COHORT))
    dumped = project.model_dump(mode="json")
    assert type(dumped["cohort"]) is dict and type(dumped["cohort"]["filters"]) is list
    assert Project.parse(dumped) == project
    assert Project.parse(json.loads(project.model_dump_json())) == project
    assert pickle.loads(pickle.dumps(project)) == project
    assert copy.deepcopy(project) == project
    assert canonical_bytes(project.cohort) == canonical_bytes(COHORT)


def test_freeze_and_thaw_round_trip_json_values() -> None:
    value: Any = {"a": [1, {"b": [True, None, "x"]}], "c": {}, "t": (1, [2])}
    frozen = freeze(value)
    assert isinstance(frozen, FrozenDict) and isinstance(frozen["a"], FrozenList)
    assert isinstance(frozen["a"][1]["b"], FrozenList) and isinstance(frozen["t"][1], FrozenList)
    assert frozen == value and json.dumps(frozen) == json.dumps(value)
    assert copy.copy(frozen) is frozen and copy.deepcopy(frozen) is frozen
    assert pickle.loads(pickle.dumps(frozen)) == value
    thawed = thaw(frozen)
    assert thawed == {"a": [1, {"b": [True, None, "x"]}], "c": {}, "t": [1, [2]]}
    thawed["a"].append(2)
    assert frozen["a"] == [1, {"b": [True, None, "x"]}]
    for refused in (
        lambda: frozen.setdefault("d", 1),
        lambda: frozen.popitem(),
        lambda: frozen.clear(),
        lambda: frozen["a"].sort(),
        lambda: frozen["a"].__iadd__([3]),
        lambda: frozen["a"].__delitem__(0),
    ):
        with pytest.raises(TypeError):
            refused()
