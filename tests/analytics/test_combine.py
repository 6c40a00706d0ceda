"""The hub's combine: summed node vectors in, a disclosure-controlled result out; every
number checked against a direct computation over the union of the simulated patients."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from medspace.analytics import QueryResult, QuerySpec, SpecError, combine, layout, wilson_interval
from medspace.analytics.local import compute_local
from medspace.node import Node

from .conftest import Hospital
from .population import Person

K = 5
SPEC: dict[str, Any] = {
    "variables": {
        "hba1c": {"kind": "measurement", "system": "LOINC", "code": "4548-4"},
        "sex": {"kind": "sex"},
        "mi": {"kind": "has", "domain": "condition", "system": "ICD-10", "code": "I21.9"},
    },
    "statistics": [
        {"id": "n", "kind": "count"},
        {"id": "hba1c", "kind": "variance", "variable": "hba1c", "by": ["sex"]},
        {"id": "mi", "kind": "proportion", "variable": "mi", "by": ["sex"]},
        {
            "id": "q",
            "kind": "quantiles",
            "variable": "hba1c",
            "edges": [4, 4.5, 5, 5.5, 6, 6.5, 7, 7.5, 8, 9, 10, 12],
            "probabilities": [0.25, 0.5, 0.75],
        },
        {
            "id": "b",
            "kind": "bounds",
            "variable": "hba1c",
            "edges": [3, 4, 5, 6, 8, 10, 12, 14, 16],
        },
        {"id": "h", "kind": "histogram", "variable": "hba1c", "edges": [5, 6, 7]},
    ],
}


def _run(opened: list[Node], spec: QuerySpec, k: int = K) -> QueryResult:
    parts = {
        f"h{i + 1}": compute_local(n.store, spec, min_cell_size=k) for i, n in enumerate(opened)
    }
    total = np.sum([p.values for p in parts.values()], axis=0).tolist()
    flags = {name: p.suppressed for name, p in parts.items()}
    refusals = {name: p.refusals for name, p in parts.items()}
    return combine(spec, layout(spec), total, flags, k, refusals=refusals)


def _union(hospitals: list[Hospital]) -> list[Person]:
    return [p for h in hospitals for p in h.people]


def test_means_sds_and_proportions_equal_the_pooled_values(
    hospitals: list[Hospital], opened: list[Node]
) -> None:
    spec = QuerySpec.parse(SPEC)
    result = _run(opened, spec)
    people = _union(hospitals)
    assert result.statistic("n").rows[0].values["n"] == len(people)
    for row in result.statistic("hba1c").rows:
        values = [p.hba1c() for p in people if p.sex == row.labels[0] and p.hba1c() is not None]
        assert row.values["n"] == len(values)
        assert row.values["mean"] == pytest.approx(np.mean(values), rel=1e-12)
        assert row.values["sd"] == pytest.approx(np.std(values, ddof=1), rel=1e-9)
    for row in result.statistic("mi").rows:
        group = [p for p in people if p.sex == row.labels[0]]
        yes = sum(p.has("ICD-10", "I21.9") for p in group)
        assert row.values["proportion"] == pytest.approx(yes / len(group))
        assert row.values["ci_low"] < row.values["proportion"] < row.values["ci_high"]
    assert result.nodes == ("h1", "h2", "h3")


def test_quantiles_are_within_the_stated_bin_width(
    hospitals: list[Hospital], opened: list[Node]
) -> None:
    spec = QuerySpec.parse(SPEC)
    result = _run(opened, spec)
    values = np.array([p.hba1c() for p in _union(hospitals) if p.hba1c() is not None])
    for row, prob in zip(result.statistic("q").rows, (0.25, 0.5, 0.75), strict=True):
        assert row.values["quantile"] is not None
        assert abs(row.values["quantile"] - np.quantile(values, prob)) <= row.values["error"]
    assert any("bin width" in note for note in result.statistic("q").notes)


@pytest.mark.parametrize("fine", [False, True])
def test_bounds_are_the_edges_of_the_outermost_bins_holding_k_patients_at_a_node(
    hospitals: list[Hospital], opened: list[Node], fine: bool
) -> None:
    """A bin of fewer than k patients does not move a bound: with fine edges it would give
    that patient's value (edges 0.001 apart gave one patient's HbA1c to 3 decimals)."""
    edges = SPEC["statistics"][4]["edges"]
    if fine:
        edges = [round(4 + 0.001 * i, 3) for i in range(1000)]
    bounds_stat = {"id": "b", "kind": "bounds", "variable": "hba1c", "edges": edges}
    spec = QuerySpec.parse({**SPEC, "statistics": [bounds_stat]})
    bounds = _run(opened, spec).statistic("b").rows[0].values
    full: list[int] = []  # the bins (numbered as bin_labels does) with >= K at some node
    for hospital in hospitals:
        values = [p.hba1c() for p in hospital.people if p.hba1c() is not None]
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
        full += [b for b, c in enumerate(counts) if c >= K]
    assert full, "the fixture must hold a bin of K patients"
    assert bounds["lower"] == (None if min(full) == 0 else edges[min(full) - 1])
    assert bounds["upper"] == (None if max(full) == len(edges) else edges[max(full)])


def test_a_cell_suppressed_at_one_node_is_hidden_in_the_combined_result() -> None:
    spec = QuerySpec.parse(
        {
            "variables": {"sex": {"kind": "sex"}},
            "statistics": [{"id": "n", "kind": "count", "by": ["sex"]}],
        }
    )
    cells = layout(spec)
    # h1 hid its female count (and, complementary, its male count); h2 shows both
    flags = {"h1": ["below-min-cell", "complementary"], "h2": [None, None]}
    result = combine(spec, cells, [40.0, 60.0], flags, K)
    rows = {r.labels: r for r in result.statistic("n").rows}
    assert rows[("female",)].values["n"] is None
    assert rows[("female",)].display["n"] == "<5"
    assert "h1: below-min-cell" in rows[("female",)].reasons
    assert len(result.suppressed) == 2


def test_a_combined_count_below_k_is_hidden_with_its_complement() -> None:
    spec = QuerySpec.parse(
        {
            "variables": {"sex": {"kind": "sex"}},
            "statistics": [
                {"id": "n", "kind": "count", "by": ["sex"]},
                {"id": "all", "kind": "count"},
            ],
        }
    )
    result = combine(spec, layout(spec), [3.0, 60.0, 63.0], {"h1": [None] * 3, "h2": [None] * 3}, K)
    rows = {r.labels: r for r in result.statistic("n").rows}
    assert rows[("female",)].reasons == ("combined: below-min-cell",)
    total = result.statistic("all").rows[0].values["n"]
    assert rows[("male",)].values["n"] is None or total is None


def test_wilson_interval_matches_the_textbook_value() -> None:
    # Wilson 95 % interval for 8 of 10: (0.490, 0.943)
    low, high = wilson_interval(8, 10, 0.95)
    assert math.isclose(low, 0.4902, abs_tol=5e-4) and math.isclose(high, 0.9433, abs_tol=5e-4)


def test_vectors_of_the_wrong_length_are_refused() -> None:
    spec = QuerySpec.parse(SPEC)
    cells = layout(spec)
    with pytest.raises(SpecError, match="length"):
        combine(spec, cells, [0.0] * (len(cells) - 1), {"h1": [None] * len(cells)}, K)


def test_the_result_is_json_and_back(opened: list[Node]) -> None:
    spec = QuerySpec.parse(SPEC)
    result = _run(opened, spec)
    assert QueryResult.model_validate_json(result.model_dump_json()) == result
    assert result.spec_digest == spec.digest()


def test_quantiles_with_suppressed_bins_widen_their_error_but_still_hold() -> None:
    spec = QuerySpec.parse(
        {
            "variables": {"x": {"kind": "age"}},
            "statistics": [
                {
                    "id": "q",
                    "kind": "quantiles",
                    "variable": "x",
                    "edges": [0, 10, 20, 30, 40],
                    "probabilities": [0.1, 0.5],
                }
            ],
        }
    )
    cells = layout(spec)
    # bins: <0, [0,10), [10,20), [20,30), [30,40), >=40, total
    truth = [0, 3, 40, 50, 7, 0]
    values = [float(v) for v in truth] + [float(sum(truth))]
    flags = [None, "below-min-cell", None, None, None, None, None]
    result = combine(spec, cells, [0.0, 0.0, *values[2:]], {"h1": flags}, K)
    rows = {r.labels[0]: r for r in result.statistic("q").rows}
    data = np.repeat([5.0, 15.0, 25.0, 35.0], [3, 40, 50, 7])
    for name, prob in (("p10", 0.1), ("p50", 0.5)):
        row = rows[name]
        assert row.values["quantile"] is not None
        assert abs(row.values["quantile"] - np.quantile(data, prob)) <= row.values["error"]
    assert rows["p10"].values["error"] > 10  # the hidden bin's 3 patients widen it
    assert rows["p10"].reasons == ("suppressed bins widen the error",)


def test_a_quantile_outside_the_edges_says_so() -> None:
    spec = QuerySpec.parse(
        {
            "variables": {"x": {"kind": "age"}},
            "statistics": [
                {
                    "id": "q",
                    "kind": "quantiles",
                    "variable": "x",
                    "edges": [10, 20],
                    "probabilities": [0.5, 0.99],
                }
            ],
        }
    )
    cells = layout(spec)
    # bins: < 10 (90 patients), [10, 20) (5), >= 20 (5); total 100
    result = combine(spec, cells, [90.0, 5.0, 5.0, 100.0], {"h1": [None] * 4}, K)
    rows = {r.labels[0]: r for r in result.statistic("q").rows}
    assert rows["p50"].values["quantile"] is None
    assert rows["p50"].display["quantile"] == "< 10"
    assert rows["p99"].display["quantile"] == ">= 20"
