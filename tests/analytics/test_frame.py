"""An analysis session's in-memory statistics give exactly what the SQL path gives: the
same cells, the same suppressions and refusals, for every statistic kind, with and
without cohort filters, opt-outs and small cells, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from typing import Any

import pytest

from medspace.analytics import QuerySpec, Refused, cohort_person_ids, compute_local
from medspace.analytics.frame import FeatureFrame
from medspace.node import Node

from .conftest import Hospital
from .population import Person
from .test_local import FILTERED, HBA1C_EDGES, STATISTICS, VARIABLES

EVERY_KIND: list[dict[str, Any]] = [
    *STATISTICS,
    {"id": "q", "kind": "quantiles", "variable": "hba1c", "edges": HBA1C_EDGES},
    {"id": "age_sum_by_dm", "kind": "sum", "variable": "age", "by": ["dm"]},
    {"id": "dm_mean", "kind": "mean", "variable": "dm", "by": ["band"]},
    {"id": "wide", "kind": "table", "variables": ["band", "response"]},
]


def _spec(cohort: dict[str, Any] | None = None, statistics: list[Any] = EVERY_KIND) -> QuerySpec:
    return QuerySpec.parse(
        {"cohort": cohort or {}, "variables": VARIABLES, "statistics": statistics}
    )


def _same(node: Node, spec: QuerySpec, k: int, exclude: list[str] | None = None) -> None:
    frame = FeatureFrame.load(node.store, spec, exclude or ())
    try:
        sql = compute_local(node.store, spec, min_cell_size=k, exclude_pseudonyms=exclude or ())
    except Refused as refused:  # a cohort below k: refused alike in memory
        with pytest.raises(Refused) as again:
            frame.aggregate(spec, min_cell_size=k)
        assert again.value.code == refused.code == "cohort-below-k"
        assert frame.size < k
        return
    memory = frame.aggregate(spec, min_cell_size=k)
    assert frame.size == sql.cohort_size == memory.cohort_size
    ids = cohort_person_ids(node.store, spec, exclude or ())
    assert frame.ids.tolist() == ids.tolist()
    assert memory.suppressed == sql.suppressed
    assert memory.refusals == sql.refusals
    for a, b in zip(memory.values, sql.values, strict=True):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9), (a, b)


@pytest.mark.parametrize("k", [1, 5, 40])
@pytest.mark.parametrize("cohort", [None, FILTERED], ids=["everyone", "filtered"])
def test_every_statistic_in_memory_equals_the_sql_answer(
    opened: list[Node], cohort: dict[str, Any] | None, k: int
) -> None:
    for node in opened:
        _same(node, _spec(cohort), k)


def test_opted_out_patients_are_not_in_the_frame(
    hospitals: list[Hospital], opened: list[Node]
) -> None:
    node = opened[1]
    leaving = [node.store.pseudonym(p.source_id) for p in hospitals[1].people[:30]]
    _same(node, _spec(), 5, leaving)
    assert FeatureFrame.load(node.store, _spec(), leaving).size == len(hospitals[1].people) - 30


def test_one_frame_answers_statistics_it_was_not_loaded_for(opened: list[Node]) -> None:
    """A session loads every variable once; each later statistic is one of many."""
    node = opened[2]
    frame = FeatureFrame.load(node.store, _spec())
    for statistic in EVERY_KIND:
        spec = _spec(statistics=[statistic])
        sql = compute_local(node.store, spec, min_cell_size=5)
        memory = frame.aggregate(spec, min_cell_size=5)
        assert memory.suppressed == sql.suppressed, statistic["id"]
        assert all(
            math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)
            for a, b in zip(memory.values, sql.values, strict=True)
        ), statistic["id"]


def test_an_empty_cohort_is_refused_alike(opened: list[Node]) -> None:
    nobody = {"filters": [{"domain": "condition", "system": "ICD-10", "code": "Z99.99"}]}
    _same(opened[0], _spec(nobody), 5)


def test_the_frame_holds_a_few_bytes_per_patient_and_variable(opened: list[Node]) -> None:
    frame = FeatureFrame.load(opened[0].store, _spec())
    assert 0 < frame.nbytes <= frame.size * 8 * (len(VARIABLES) + 5)


@pytest.mark.postgres
def test_postgres_frames_equal_postgres_sql(pg_hospital: tuple[Node, list[Person]]) -> None:
    node, _people = pg_hospital
    for cohort in (None, FILTERED):
        _same(node, _spec(cohort), 5)
