"""`compute_local(cleared=...)` hands the differencing audit exactly the cohort
`cohort_person_ids` selects (opted-out patients left out), from the aggregate's own pass,
and (with a fresh release record) changes nothing else in the answer."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from medspace.analytics import QuerySpec, cohort_person_ids, compute_local, layout
from medspace.analytics.released import ReleaseRecord
from medspace.node import Node

from .conftest import Hospital
from .population import Person
from .test_local import FILTERED, VARIABLES
from .test_local import STATISTICS as LOCAL_STATISTICS

COHORTS: list[dict[str, Any]] = [
    {},
    FILTERED,
    {"filters": [{"domain": "condition", "system": "ICD-10", "code": "C22*"}]},
]
STATISTICS: list[list[dict[str, Any]]] = [
    [{"id": "n", "kind": "count"}],  # the plain count: no feature table
    [{"id": "m", "kind": "mean", "variable": "hba1c", "by": ["sex"]}],
    [{"id": "n", "kind": "count"}, {"id": "t", "kind": "table", "variables": ["band"]}],
]


def test_the_cohort_ids_are_the_cohort_and_the_answer_is_unchanged(
    hospitals: list[Hospital], opened: list[Node]
) -> None:
    node = opened[0]
    leaving = [node.store.pseudonym(p.source_id) for p in hospitals[0].people[:7]]
    for cohort in COHORTS:
        for statistics in STATISTICS:
            spec = QuerySpec.parse(
                {"cohort": cohort, "variables": VARIABLES, "statistics": statistics}
            )
            for exclude in ((), leaving):
                plain = compute_local(node.store, spec, exclude_pseudonyms=exclude, min_cell_size=3)
                handed: list[Any] = []
                both = compute_local(
                    node.store,
                    spec,
                    exclude_pseudonyms=exclude,
                    min_cell_size=3,
                    cleared=lambda ids, seen=handed: seen.append(ids) or ReleaseRecord(),
                )
                expected = cohort_person_ids(node.store, spec, exclude)
                assert len(handed) == 1 and np.array_equal(handed[0], expected)
                assert plain.cohort_ids is None
                assert both.cohort_ids is not None
                assert np.array_equal(both.cohort_ids, expected)
                assert both.cohort_size == expected.size
                assert (both.values, both.suppressed, both.refusals) == (
                    plain.values,
                    plain.suppressed,
                    plain.refusals,
                )
    assert cohort_person_ids(node.store, QuerySpec.parse({"statistics": STATISTICS[0]})).size == (
        len(hospitals[0].people)
    )


def _ids_only(ids: Any) -> None:
    """Ask for the cohort's ids, with no release record (each answer on its own)."""


@pytest.mark.postgres
def test_one_statistic_alone_on_postgres_matches_it_in_a_larger_query(
    pg_hospital: tuple[Node, list[Person]],
) -> None:
    """One statistic is read straight from the feature subquery with its ids joined in
    the same query; several go through a temporary table. Same cells, same cohort."""
    node, _ = pg_hospital
    whole = QuerySpec.parse(
        {"cohort": FILTERED, "variables": VARIABLES, "statistics": LOCAL_STATISTICS}
    )
    together = compute_local(node.store, whole, min_cell_size=1, cleared=_ids_only)
    assert together.cohort_ids is not None and together.cohort_ids.size > 0
    cells = layout(whole)
    for stat in LOCAL_STATISTICS:
        spec = QuerySpec.parse({"cohort": FILTERED, "variables": VARIABLES, "statistics": [stat]})
        alone = compute_local(node.store, spec, min_cell_size=1, cleared=_ids_only)
        want = [together.values[i] for i in cells.positions(stat["id"])]
        assert alone.values == pytest.approx(want, rel=1e-12), stat["id"]
        assert alone.cohort_ids is not None
        assert np.array_equal(alone.cohort_ids, together.cohort_ids)
        assert alone.cohort_size == together.cohort_size
