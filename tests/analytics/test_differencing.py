"""Differencing: the classic attack ("C22 patients" then "C22 patients except men aged
37") and a three-query variant are refused; repeats and unrelated cohorts are not."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medspace.analytics import (
    DifferencingRefused,
    QueryAudit,
    QuerySpec,
    cohort_person_ids,
    compute_local,
)
from medspace.analytics.differencing import decode_ids, encode_ids
from medspace.node import Node

from .conftest import Hospital

K = 5
C22 = {"domain": "condition", "system": "ICD-10", "code": "C22*"}


def _count(cohort: dict[str, Any]) -> QuerySpec:
    return QuerySpec.parse({"cohort": cohort, "statistics": [{"id": "n", "kind": "count"}]})


def _small_male_age(hospital: Hospital) -> int:
    """An age at which 1 to k-1 men of the hospital have a C22 condition."""
    ages = Counter(p.age for p in hospital.people if p.sex == "male" and p.has("ICD-10", "C22*"))
    return next(
        age for age, n in sorted(ages.items(), key=lambda a: (a[1], a[0] or 0)) if age and 0 < n < K
    )


def test_the_classic_differencing_attack_is_refused(
    hospitals: list[Hospital], opened: list[Node], tmp_path: Path
) -> None:
    node = opened[0]
    age = _small_male_age(hospitals[0])
    everyone = _count({"filters": [C22]})
    all_but = _count(
        {"filters": [C22], "exclude": [{"sex": ["male"], "age": {"min": age, "max": age}}]}
    )
    first = cohort_person_ids(node.store, everyone)
    second = cohort_person_ids(node.store, all_but)
    # both counts are large, their difference is one to four men
    assert compute_local(node.store, everyone, min_cell_size=K).values[0] >= K
    assert compute_local(node.store, all_but, min_cell_size=K).values[0] >= K
    men = sum(
        1
        for p in hospitals[0].people
        if p.sex == "male" and p.age == age and p.has("ICD-10", "C22*")
    )
    assert first.size - second.size == men
    assert 0 < men < K

    audit = QueryAudit(tmp_path / "analytics.db")
    audit.check("liver-study", first, min_cell_size=K)
    with pytest.raises(DifferencingRefused, match="fewer than k = 5") as caught:
        audit.check("liver-study", second, min_cell_size=K)
    assert caught.value.code == "differencing"
    assert audit.answered("liver-study") == 1


def test_identical_repeats_and_other_projects_are_answered(tmp_path: Path) -> None:
    audit = QueryAudit(tmp_path / "a.db")
    cohort = np.arange(100)
    audit.check("p1", cohort, min_cell_size=K)
    audit.check("p1", cohort[::-1], min_cell_size=K)  # same set, any order
    audit.check("p2", cohort[2:], min_cell_size=K)  # another project's audit is separate
    assert audit.answered("p1") == 1 and audit.answered("p2") == 1


def test_cohorts_that_differ_by_k_or_more_are_answered(tmp_path: Path) -> None:
    audit = QueryAudit(tmp_path / "a.db")
    audit.check("p", np.arange(100), min_cell_size=K)
    audit.check("p", np.arange(K, 100), min_cell_size=K)
    audit.check("p", np.arange(200, 300), min_cell_size=K)


def test_a_three_query_variant_is_refused(tmp_path: Path) -> None:
    # A; then B = A minus one patient plus 50 others (differs from A by 51); then C =
    # the 50 others. count(A) + count(C) - count(B) is the one patient.
    audit = QueryAudit(tmp_path / "a.db")
    a = np.arange(100)
    others = np.arange(1000, 1050)
    audit.check("p", a, min_cell_size=K)
    audit.check("p", np.concatenate([a[1:], others]), min_cell_size=K)
    with pytest.raises(DifferencingRefused):
        audit.check("p", others, min_cell_size=K)


def test_the_audit_survives_a_restart(tmp_path: Path) -> None:
    QueryAudit(tmp_path / "a.db").check("p", np.arange(50), min_cell_size=K)
    with pytest.raises(DifferencingRefused):
        QueryAudit(tmp_path / "a.db").check("p", np.arange(1, 50), min_cell_size=K)


def test_the_audit_file_holds_no_pseudonyms_or_source_ids(
    hospitals: list[Hospital], opened: list[Node], tmp_path: Path
) -> None:
    audit = QueryAudit(tmp_path / "a.db")
    audit.check(
        "p", cohort_person_ids(opened[0].store, _count({"filters": [C22]})), min_cell_size=K
    )
    raw = (tmp_path / "a.db").read_bytes() + b"".join(
        f.read_bytes() for f in tmp_path.glob("a.db-*")
    )
    for person in hospitals[0].people[:50]:
        assert person.source_id.encode() not in raw
        assert opened[0].store.pseudonym(person.source_id).encode() not in raw


@settings(max_examples=50, deadline=None)
@given(st.sets(st.integers(0, 2**40), max_size=300))
def test_cohort_ids_round_trip_through_their_encoding(ids: set[int]) -> None:
    array = np.array(sorted(ids), dtype=np.int64)
    assert np.array_equal(decode_ids(encode_ids(array)), array)
