"""Differencing: the classic attack ("C22 patients" then "C22 patients except men aged
37") and a three-query variant are refused; repeats and unrelated cohorts are not."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from medspace.analytics import (
    DifferencingRefused,
    QueryAudit,
    QuerySpec,
    Refused,
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


def test_a_decoy_of_the_target_alone_does_not_let_the_three_query_attack_through(
    hospitals: list[Hospital], opened: list[Node], tmp_path: Path
) -> None:
    # The reviewer's attack: first the target alone (D, answered as "<k"), then A = C22,
    # B = A except the target and W, C = W. A - B - C is the target. Without the decoy
    # C is refused; the decoy must not change that, though it is a whole answered cohort.
    node = opened[0]
    age = _small_male_age(hospitals[0])
    target = {"sex": ["male"], "age": {"min": age, "max": age}}
    women = {"sex": ["female"], "age": {"min": 50, "max": 69}}
    decoy = _count({"filters": [C22], **target})
    a, b, c = (
        cohort_person_ids(node.store, _count(cohort))
        for cohort in (
            {"filters": [C22]},
            {"filters": [C22], "exclude": [target, women]},
            {"filters": [C22], **women},
        )
    )
    d = cohort_person_ids(node.store, decoy)
    assert np.array_equal(np.setdiff1d(a, np.union1d(b, c)), d)  # A - B - C is D
    assert min(a.size, b.size, c.size) >= K > d.size > 0
    # the node gives no answer about the decoy at all (its zeros would describe him)
    with pytest.raises(Refused) as refused:
        compute_local(node.store, decoy, min_cell_size=K)
    assert refused.value.code == "cohort-below-k"

    audit = QueryAudit(tmp_path / "a.db")
    for cohort in (d, a, b):
        audit.check("p", cohort, min_cell_size=K)
    with pytest.raises(DifferencingRefused, match="fewer than k = 5") as caught:
        audit.check("p", c, min_cell_size=K)
    assert caught.value.code == "differencing"


@pytest.mark.parametrize(
    ("target_size", "decoy_size"),
    [
        (1, 1),  # the target alone, asked first
        (K - 1, K - 1),  # the largest decoy still answered as "<k"
        (1, 0),  # an empty cohort: nothing to vouch with either
    ],
)
def test_a_decoy_smaller_than_k_does_not_excuse_the_atom_it_covers(
    tmp_path: Path, target_size: int, decoy_size: int
) -> None:
    audit = QueryAudit(tmp_path / "a.db")
    a = np.arange(100)  # the target is a[:target_size], W is a[50:]
    audit.check("p", a[:decoy_size], min_cell_size=K)
    audit.check("p", a, min_cell_size=K)
    audit.check("p", a[target_size:50], min_cell_size=K)  # A minus the target and W
    with pytest.raises(DifferencingRefused):
        audit.check("p", a[50:], min_cell_size=K)  # A - B - C = the target
    assert audit.answered("p") == 2  # the decoy is not remembered


def test_a_small_cohort_passes_the_audit_and_is_not_remembered(
    tmp_path: Path,
) -> None:
    # The node refuses a cohort below k whole (`cohort-below-k`, test_local.py), after
    # the audit: the audit must neither stop nor remember it.
    audit = QueryAudit(tmp_path / "a.db")
    audit.check("p", np.arange(3), min_cell_size=K)
    audit.check("p", np.arange(100), min_cell_size=K)
    audit.check("p", np.arange(3), min_cell_size=K)
    audit.check("p", np.arange(1, 3), min_cell_size=K)
    assert audit.answered("p") == 1


def _exposed_small_atom(cohorts: list[set[int]], k: int) -> bool:
    """Oracle for the property below: does some atom of 0 < size < k lie in the row space
    of the cohorts' indicators (rank test, not the audit's projection)?"""
    union = sorted(set().union(*cohorts))
    rows = np.array([[p in c for p in union] for c in cohorts], dtype=np.float64)
    rank = np.linalg.matrix_rank(rows)
    atoms: dict[tuple[bool, ...], list[int]] = {}
    for j, p in enumerate(union):
        atoms.setdefault(tuple(p in c for c in cohorts), []).append(j)
    for members in atoms.values():
        if len(members) < k:
            indicator = np.zeros(len(union))
            indicator[members] = 1.0
            if np.linalg.matrix_rank(np.vstack([rows, indicator])) == rank:
                return True
    return False


@settings(max_examples=150, deadline=None)
@example([{0}, set(range(9)), set(range(4, 9)), {1, 2, 3}])  # decoy, A, B = A - 0 - W, W
@given(st.lists(st.sets(st.integers(0, 11), max_size=12), min_size=1, max_size=6))
def test_the_cohorts_answered_with_values_never_expose_a_small_group(
    cohorts: list[set[int]],
) -> None:
    # every cohort of k or more that the audit lets through is answered with its values;
    # together they must not add and subtract to fewer than k patients
    k = 3
    released: list[set[int]] = []
    with tempfile.TemporaryDirectory() as directory:
        audit = QueryAudit(Path(directory) / "a.db")
        for cohort in cohorts:
            try:
                audit.check("p", np.array(sorted(cohort), dtype=np.int64), min_cell_size=k)
            except DifferencingRefused:
                continue
            if len(cohort) >= k and cohort not in released:
                released.append(cohort)
    assert not released or not _exposed_small_atom(released, k)


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
