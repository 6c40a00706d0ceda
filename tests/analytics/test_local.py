"""Local execution: the SQL pushdown gives exactly what a plain-Python computation over
the same simulated patients gives, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import numpy as np
import pytest

from medspace.analytics import (
    QuerySpec,
    Refused,
    cohort_person_ids,
    compute_local,
    layout,
    local,
)
from medspace.analytics.frame import FeatureFrame
from medspace.analytics.layout import bin_labels
from medspace.analytics.local import disclose
from medspace.node import Node

from .conftest import Hospital
from .population import Person, age_band

HBA1C_EDGES = [4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
VARIABLES: dict[str, Any] = {
    "age": {"kind": "age"},
    "age10": {"kind": "age", "centre": 60, "scale": 10},
    "sex": {"kind": "sex", "categories": ["female", "male"]},
    "band": {
        "kind": "age_band",
        "bands": [
            {"label": "<40", "min": 0, "max": 39},
            {"label": "40-59", "min": 40, "max": 59},
            {"label": "60+", "min": 60, "max": 200},
        ],
    },
    "hba1c": {"kind": "measurement", "system": "LOINC", "code": "4548-4", "pick": "earliest"},
    "hba1c_last": {"kind": "measurement", "system": "LOINC", "code": "4548-4", "pick": "latest"},
    "dm": {"kind": "has", "domain": "condition", "system": "ICD-10", "code": "E11.9"},
    "mi": {"kind": "has", "domain": "condition", "system": "ICD-10", "code": "I21*"},
    "response": {
        "kind": "observation_category",
        "system": "LOINC",
        "code": "88040-1",
        "categories": [
            {"label": "improved", "codes": [{"system": "SNOMED CT", "code": "268910001"}]},
            {
                "label": "not improved",
                "codes": [
                    {"system": "SNOMED CT", "code": "359746009"},
                    {"system": "SNOMED CT", "code": "271299001"},
                ],
            },
        ],
    },
    "responded": {"kind": "is", "of": "response", "category": "improved"},
}
STATISTICS: list[dict[str, Any]] = [
    {"id": "n", "kind": "count"},
    {"id": "by_band_sex", "kind": "count", "by": ["band", "sex"]},
    {"id": "hba1c_mean", "kind": "mean", "variable": "hba1c", "by": ["sex"]},
    {"id": "age_var", "kind": "variance", "variable": "age10"},
    {"id": "last_sum", "kind": "sum", "variable": "hba1c_last"},
    {"id": "hba1c_hist", "kind": "histogram", "variable": "hba1c", "edges": HBA1C_EDGES},
    {"id": "band_dm", "kind": "table", "variables": ["band", "dm"]},
    {"id": "response", "kind": "table", "variables": ["response"]},
    {"id": "mi_rate", "kind": "proportion", "variable": "mi", "by": ["sex"]},
    {"id": "responded", "kind": "proportion", "variable": "responded"},
    {"id": "hba1c_bounds", "kind": "bounds", "variable": "hba1c", "edges": HBA1C_EDGES},
]


def _spec(cohort: dict[str, Any] | None = None) -> QuerySpec:
    return QuerySpec.parse(
        {"cohort": cohort or {}, "variables": VARIABLES, "statistics": STATISTICS}
    )


def _features(p: Person) -> dict[str, Any]:
    sex = p.sex if p.sex in ("female", "male") else None
    age = p.age
    response = p.response()
    category = (
        None if response is None else "improved" if response[1] == "268910001" else "not improved"
    )
    return {
        "age": age,
        "age10": None if age is None else (age - 60) / 10,
        "sex": sex,
        "band": age_band(age),
        "hba1c": p.hba1c("earliest"),
        "hba1c_last": p.hba1c("latest"),
        "dm": int(p.has("ICD-10", "E11.9")),
        "mi": int(p.has("ICD-10", "I21*")),
        "response": category,
        "responded": None if category is None else int(category == "improved"),
    }


def _in_group(row: dict[str, Any], names: tuple[str, ...], labels: tuple[str, ...]) -> bool:
    if labels in (("total",), ()):
        return True
    return all(
        label == "all" or (row[name] is not None and str(row[name]) == label)
        for name, label in zip(names, labels, strict=True)
    )


def _bin(value: float, edges: list[float]) -> str:
    labels = bin_labels(tuple(edges))
    for i, edge in enumerate(edges):
        if value < edge:
            return labels[i]
    return labels[-1]


def _oracle(spec: QuerySpec, people: list[Person]) -> list[float]:
    """The layout's raw values, computed in Python from the simulated people."""
    rows = [_features(p) for p in people]
    out: list[float] = []
    for cell in layout(spec):
        stat = spec.statistic(cell.statistic)
        binned = stat.kind in ("histogram", "bounds")
        names = getattr(stat, "by", None) or getattr(stat, "variables", ())
        pick = rows if binned else [r for r in rows if _in_group(r, names, cell.labels)]
        kind = stat.kind
        if kind == "count":
            out.append(len(pick))
        elif kind in ("mean", "variance", "sum"):
            values = [r[stat.variable] for r in pick if r[stat.variable] is not None]  # type: ignore[union-attr]
            out.append(
                {"n": len(values), "sum": sum(values), "sumsq": sum(v * v for v in values)}[
                    cell.part
                ]
            )
        elif kind == "histogram":
            values = [r["hba1c"] for r in rows if r["hba1c"] is not None]
            out.append(
                len(values)
                if cell.part == "n"
                else sum(_bin(v, HBA1C_EDGES) == cell.labels[0] for v in values)
            )
        elif kind == "bounds":
            values = [r["hba1c"] for r in rows if r["hba1c"] is not None]
            out.append(float(any(_bin(v, HBA1C_EDGES) == cell.labels[0] for v in values)))
        elif kind == "table":
            names = stat.variables  # type: ignore[union-attr]
            complete = [r for r in pick if all(r[n] is not None for n in names)]
            out.append(len(complete))
        elif kind == "proportion":
            var = stat.variable  # type: ignore[union-attr]
            known = [r for r in pick if r[var] is not None]
            if cell.part == "n":
                out.append(len(known))
            else:
                out.append(sum(r[var] == (1 if cell.part == "yes" else 0) for r in known))
    return [float(v) for v in out]


def _in_cohort(p: Person, after: date) -> bool:
    """Python version of the filtered cohort used below."""
    hba1c_ok = any(
        (s, c) == ("LOINC", "4548-4") and 6 <= v <= 8 and d >= after
        for s, c, d, v in p.measurements
    )
    return (
        p.has("ICD-10", "C22*")
        and not p.has("ICD-10", "I10")
        and hba1c_ok
        and p.sex == "male"
        and p.age is not None
        and 40 <= p.age <= 70
        and not (p.has("ICD-10", "E11.9") and 50 <= p.age <= 55)
    )


FILTERED = {
    "filters": [
        {"domain": "condition", "system": "ICD-10", "code": "C22*"},
        {"domain": "condition", "system": "ICD-10", "code": "I10", "present": False},
        {
            "domain": "measurement",
            "system": "LOINC",
            "code": "4548-4",
            "min": 6,
            "max": 8,
            "after": "2021-06-01",
        },
    ],
    "sex": ["male"],
    "age": {"min": 40, "max": 70},
    "exclude": [
        {
            "filters": [{"domain": "condition", "system": "ICD-10", "code": "E11.9"}],
            "age": {"min": 50, "max": 55},
        }
    ],
}


def _assert_close(got: list[float], want: list[float], spec: QuerySpec) -> None:
    cells = layout(spec).cells
    for cell, g, w in zip(cells, got, want, strict=True):
        assert math.isclose(g, w, rel_tol=1e-9, abs_tol=1e-9), (cell, g, w)


def test_every_statistic_matches_python_over_the_same_patients(
    hospitals: list[Hospital], opened: list[Node]
) -> None:
    spec = _spec()
    for hospital, node in zip(hospitals, opened, strict=True):
        result = compute_local(node.store, spec, min_cell_size=1)
        assert result.suppressed == [None] * len(result.values)
        assert result.cohort_size == len(hospital.people)
        _assert_close(result.values, _oracle(spec, hospital.people), spec)


def test_cohort_filters_match_python(hospitals: list[Hospital], opened: list[Node]) -> None:
    spec = _spec(FILTERED)
    for hospital, node in zip(hospitals, opened, strict=True):
        expected = [p for p in hospital.people if _in_cohort(p, date(2021, 6, 1))]
        assert 0 < len(expected) < len(hospital.people) // 4
        result = compute_local(node.store, spec, min_cell_size=1)
        assert result.cohort_size == len(expected)
        _assert_close(result.values, _oracle(spec, expected), spec)


def test_opted_out_patients_are_left_out(hospitals: list[Hospital], opened: list[Node]) -> None:
    hospital, node = hospitals[0], opened[0]
    spec = _spec()
    leaving = hospital.people[:25]
    pseudonyms = [node.store.pseudonym(p.source_id) for p in leaving]
    result = compute_local(node.store, spec, exclude_pseudonyms=pseudonyms, min_cell_size=1)
    _assert_close(result.values, _oracle(spec, hospital.people[25:]), spec)
    ids = cohort_person_ids(node.store, spec, pseudonyms)
    assert ids.size == len(hospital.people) - 25
    assert np.all(np.diff(ids) > 0)


def test_small_cells_never_leave_the_node(hospitals: list[Hospital], opened: list[Node]) -> None:
    spec = _spec(FILTERED)
    raw_aggregate = compute_local(opened[0].store, spec, min_cell_size=1)
    k = min(10, raw_aggregate.cohort_size)  # a cohort below k is refused whole
    raw = raw_aggregate.values
    result = compute_local(opened[0].store, spec, min_cell_size=k)
    cells = layout(spec).cells
    assert any(0 < raw[i] < k and c.count for i, c in enumerate(cells))  # the test has teeth
    for cell, value, reason in zip(cells, result.values, result.suppressed, strict=True):
        if cell.count:
            assert value == 0 or value >= k, cell
        if reason is not None:
            assert value == 0


def test_bounds_are_refused_when_too_few_patients_have_a_value(opened: list[Node]) -> None:
    spec = _spec()  # every simulated patient has an HbA1c value
    n = compute_local(opened[0].store, spec, min_cell_size=1).cohort_size
    assert n > len(HBA1C_EDGES) + 1  # more patients than bins: counts, not bins, decide
    assert compute_local(opened[0].store, spec, min_cell_size=n).refusals == {}
    # k above the cohort refuses it whole; below that, bounds need k patients with a value
    with pytest.raises(Refused) as whole:
        compute_local(opened[0].store, spec, min_cell_size=n + 1)
    assert whole.value.code == "cohort-below-k"
    raw = compute_local(opened[0].store, spec, min_cell_size=1).values
    refused = disclose(spec, layout(spec), list(raw), n, {"hba1c_bounds": n - 1}, n)
    assert refused.refusals == {"hba1c_bounds": "bounds-below-min-cell"}


def test_a_cohort_below_k_gets_no_answer_not_even_its_zeros(
    hospitals: list[Hospital], opened: list[Node]
) -> None:
    # One patient's cohort, answered with its non-zero cells hidden, would show as zeros
    # every condition, drug and category that patient does not have. An empty cohort is
    # refused alike: "her AND diabetes" answered 0 when she lacks it and refused when
    # she has it would tell the same.
    person = hospitals[0].people[0]
    spec = _spec({"sex": [person.sex], "age": {"min": 0, "max": 120}})
    n = compute_local(opened[0].store, spec, min_cell_size=1).cohort_size
    assert n >= 1
    with pytest.raises(Refused, match=f"fewer than {n + 1} patients") as refused:
        compute_local(opened[0].store, spec, min_cell_size=n + 1)
    assert refused.value.code == "cohort-below-k"
    empty = _spec({"sex": [person.sex], "age": {"min": 130, "max": 131}})
    with pytest.raises(Refused) as nobody:
        compute_local(opened[0].store, empty, min_cell_size=5)
    assert nobody.value.code == "cohort-below-k"


@pytest.mark.postgres
def test_postgres_gives_the_same_answers(pg_hospital: tuple[Node, list[Person]]) -> None:
    node, people = pg_hospital
    for cohort, members in (
        (None, people),
        (FILTERED, [p for p in people if _in_cohort(p, date(2021, 6, 1))]),
    ):
        spec = _spec(cohort)
        result = compute_local(node.store, spec, min_cell_size=1)
        _assert_close(result.values, _oracle(spec, members), spec)
        assert cohort_person_ids(node.store, spec).size == len(members)


def test_a_leap_day_birthday_counts_completed_years(
    opened: list[Node], hospitals: list[Hospital]
) -> None:
    # Person 0 of every hospital is born 1964-02-29: 59 on 2024-01-01, 60 on 2024-03-01.
    for reference, expected in (("2024-01-01", 59), ("2024-02-28", 59), ("2024-03-01", 60)):
        spec = QuerySpec.parse(
            {
                "reference_date": reference,
                "cohort": {"age": {"min": expected, "max": expected}},
                "variables": {"age": {"kind": "age"}},
                "statistics": [{"id": "n", "kind": "count"}],
            }
        )
        ids = cohort_person_ids(opened[0].store, spec)
        want = sum(
            1
            for p in hospitals[0].people
            if p.birth_date and _age(p.birth_date, reference) == expected
        )
        assert ids.size == want


def _age(birth: date, reference: str) -> int:
    ref = date.fromisoformat(reference)
    return ref.year - birth.year - ((birth.month, birth.day) > (ref.month, ref.day))


def test_one_statistic_alone_gives_the_same_cells_as_in_a_larger_query(
    hospitals: list[Hospital], opened: list[Node]
) -> None:
    whole = _spec(FILTERED)
    together = compute_local(opened[1].store, whole, min_cell_size=1)
    cells = layout(whole)
    for stat in STATISTICS:
        alone_spec = QuerySpec.parse(
            {"cohort": FILTERED, "variables": VARIABLES, "statistics": [stat]}
        )
        alone = compute_local(opened[1].store, alone_spec, min_cell_size=1)
        assert alone.values == [together.values[i] for i in cells.positions(stat["id"])]
        assert alone.cohort_size == together.cohort_size


def test_code_prefixes_are_case_sensitive_on_every_database(opened: list[Node]) -> None:
    upper = _spec({"filters": [{"domain": "condition", "system": "ICD-10", "code": "C22*"}]})
    lower = _spec({"filters": [{"domain": "condition", "system": "ICD-10", "code": "c22*"}]})
    assert cohort_person_ids(opened[0].store, upper).size > 0
    assert cohort_person_ids(opened[0].store, lower).size == 0


@pytest.mark.postgres
def test_postgres_prefixes_match_sqlite(pg_hospital: tuple[Node, list[Person]]) -> None:
    node, people = pg_hospital
    for code, want in (("C22*", True), ("c22*", False), ("C2*", True), ("I21.9", True)):
        spec = _spec({"filters": [{"domain": "condition", "system": "ICD-10", "code": code}]})
        expected = sum(p.has("ICD-10", code) for p in people) if want else 0
        assert cohort_person_ids(node.store, spec).size == expected


def test_tables_counted_per_cell_or_by_group_by_agree(
    opened: list[Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small tables are counted with one FILTER per cell, large ones by GROUP BY: the
    two ways give the same cells (0/1 and text categories, one and two dimensions)."""
    tables = [s for s in STATISTICS if s["kind"] == "table"]
    tables.append({"id": "band_sex", "kind": "table", "variables": ["band", "sex"]})
    spec = QuerySpec.parse({"cohort": FILTERED, "variables": VARIABLES, "statistics": tables})
    per_cell = compute_local(opened[0].store, spec, min_cell_size=1)
    monkeypatch.setattr(local, "_FILTERED_CELLS", 0)
    grouped = compute_local(opened[0].store, spec, min_cell_size=1)
    assert per_cell == grouped
    assert per_cell.cohort_size > 0 and sum(per_cell.values) > 0


@pytest.mark.parametrize("name", ["returning", "nothing", "window", "select"])
def test_a_variable_named_like_an_sql_keyword_is_just_a_name(opened: list[Node], name: str) -> None:
    """Variable names are quoted in the node's SQL: 'returning' is a keyword to SQLite."""

    def by_sex(variable: str) -> QuerySpec:
        return QuerySpec.parse(
            {
                "variables": {variable: {"kind": "sex"}},
                "statistics": [{"id": "c", "kind": "count", "by": [variable]}],
            }
        )

    spec, plain = by_sex(name), by_sex("s")
    node = opened[0]
    assert (
        compute_local(node.store, spec, min_cell_size=1).values
        == compute_local(node.store, plain, min_cell_size=1).values
    )
    frame = FeatureFrame.load(node.store, spec)
    assert (
        frame.aggregate(spec, min_cell_size=1).values
        == compute_local(node.store, plain, min_cell_size=1).values
    )
