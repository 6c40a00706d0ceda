"""The query spec: JSON in and out, errors that name the field, and a layout fixed by the
spec alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medspace.analytics import QuerySpec, SpecError, layout
from medspace.analytics.spec import counted_sums
from medspace.errors import UsageError

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"


def _spec(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "variables": {"age": {"kind": "age"}, "sex": {"kind": "sex"}},
        "statistics": [{"id": "n", "kind": "count"}],
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize("name", ["hcc-response.json", "mi-logistic.json"])
def test_example_specs_parse_and_round_trip(name: str) -> None:
    spec = QuerySpec.parse(json.loads((EXAMPLES / name).read_text()))
    assert QuerySpec.parse_json(spec.to_json()) == spec
    assert spec.digest() == QuerySpec.parse_json(spec.to_json()).digest()


def test_hcc_example_expresses_response_by_age_band_and_sex() -> None:
    spec = QuerySpec.parse(json.loads((EXAMPLES / "hcc-response.json").read_text()))
    cells = [c for c in layout(spec) if c.statistic == "response_rate"]
    assert {c.labels for c in cells} == {
        (band, sex) for band in ("<40", "40-59", "60+") for sex in ("female", "male")
    }
    assert spec.computations() == ("count", "histogram", "proportion", "table", "variance")
    assert "observation.value_code" in spec.data_fields()


def test_mi_example_expresses_the_mi_model() -> None:
    spec = QuerySpec.parse(json.loads((EXAMPLES / "mi-logistic.json").read_text()))
    model = spec.statistic("mi_model")
    assert model.kind == "logistic"
    assert model.covariates == ("age", "male", "diabetes", "hypertension", "hba1c")
    age, hba1c = spec.variables["age"], spec.variables["hba1c"]
    assert (age.centre, age.scale) == (60, 10)  # type: ignore[union-attr]
    assert (hba1c.centre, hba1c.pick) == (6, "earliest")  # type: ignore[union-attr]
    assert len(layout(spec)) == 0  # regression runs in its own rounds


@pytest.mark.parametrize(
    ("change", "field"),
    [
        # unknown field at the top level
        ({"colour": "red"}, "colour"),
        # a statistic names an undefined variable
        ({"statistics": [{"id": "m", "kind": "mean", "variable": "bmi"}]}, "bmi"),
        # a mean of a categorical variable
        ({"statistics": [{"id": "m", "kind": "mean", "variable": "sex"}]}, "numeric"),
        # statistic ids repeat
        ({"statistics": [{"id": "n", "kind": "count"}, {"id": "n", "kind": "count"}]}, "unique"),
        # histogram edges not increasing
        (
            {"statistics": [{"id": "h", "kind": "histogram", "variable": "age", "edges": [5, 1]}]},
            "increasing",
        ),
        # a code that is not a code
        (
            {"cohort": {"filters": [{"domain": "condition", "system": "ICD-10", "code": "C2'2"}]}},
            "cohort.filters.0.code",
        ),
        # a value range on a condition
        (
            {
                "cohort": {
                    "filters": [
                        {"domain": "condition", "system": "ICD-10", "code": "C22", "min": 1}
                    ]
                }
            },
            "min/max",
        ),
        # overlapping age bands
        (
            {
                "variables": {
                    "band": {
                        "kind": "age_band",
                        "bands": [
                            {"label": "a", "min": 0, "max": 40},
                            {"label": "b", "min": 40, "max": 90},
                        ],
                    }
                }
            },
            "overlap",
        ),
        # a category twice: two cells would share one position
        ({"variables": {"sex": {"kind": "sex", "categories": ["male", "male"]}}}, "unique"),
        # a band called like a margin
        (
            {
                "variables": {
                    "band": {"kind": "age_band", "bands": [{"label": "all", "min": 0, "max": 9}]}
                }
            },
            "reserved",
        ),
        # one value code in two categories
        (
            {
                "variables": {
                    "r": {
                        "kind": "observation_category",
                        "system": "LOINC",
                        "code": "x",
                        "categories": [
                            {"label": "a", "codes": [{"system": "S", "code": "1"}]},
                            {"label": "b", "codes": [{"system": "S", "code": "1"}]},
                        ],
                    }
                }
            },
            "two categories",
        ),
        # the node's own patient key as a variable name
        ({"variables": {"pid": {"kind": "sex"}}}, "rename it"),
        ({"variables": {"cmax": {"kind": "sex"}}}, "rename it"),
        # a histogram of a 0/1 variable: its counts of 0 and 1 under another name
        (
            {
                "variables": {
                    "dm": {"kind": "has", "domain": "condition", "system": "ICD-10", "code": "E11"}
                },
                "statistics": [
                    {"id": "h", "kind": "histogram", "variable": "dm", "edges": [0.5, 2]}
                ],
            },
            "ask for its proportion",
        ),
        # a proportion of a numeric variable
        ({"statistics": [{"id": "p", "kind": "proportion", "variable": "age"}]}, "0/1"),
        # edges so close that two bins print alike: one label for two cells loses an
        # equation of complementary suppression
        (
            {
                "statistics": [
                    {
                        "id": "h",
                        "kind": "histogram",
                        "variable": "age",
                        "edges": [30, 200, 200.0000001, 200.0000002],
                    }
                ]
            },
            "print alike",
        ),
        # an unknown statistic kind
        ({"statistics": [{"id": "x", "kind": "median"}]}, "statistics.0"),
        # no statistic at all
        ({"statistics": []}, "statistics"),
        # 'is' of a category the variable does not have
        (
            {
                "variables": {
                    "sex": {"kind": "sex"},
                    "x": {"kind": "is", "of": "sex", "category": "z"},
                }
            },
            "category",
        ),
    ],
)
def test_bad_specs_are_refused_naming_the_problem(change: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError, match="invalid query spec") as caught:
        QuerySpec.parse(_spec(**change))
    assert field in str(caught.value)
    assert isinstance(caught.value, UsageError)


def test_errors_do_not_echo_input_values() -> None:
    secret = "Zhang San 1964-02-29"
    with pytest.raises(SpecError) as caught:
        QuerySpec.parse(
            _spec(title=123, statistics=[{"id": "n", "kind": "count", "label": [secret]}])
        )
    assert secret not in str(caught.value)


def test_bad_json_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="invalid query spec"):
        QuerySpec.parse_json("{not json")


def test_layout_depends_on_the_spec_alone() -> None:
    spec = QuerySpec.parse(
        _spec(
            variables={
                "age": {"kind": "age"},
                "sex": {"kind": "sex", "categories": ["female", "male", "unknown"]},
                "dm": {"kind": "has", "domain": "condition", "system": "ICD-10", "code": "E11*"},
            },
            statistics=[
                {"id": "n", "kind": "count", "by": ["sex"]},
                {"id": "age", "kind": "variance", "variable": "age", "by": ["dm"]},
                {"id": "h", "kind": "histogram", "variable": "age", "edges": [0, 50, 100]},
                {"id": "t", "kind": "table", "variables": ["sex", "dm"]},
                {"id": "p", "kind": "proportion", "variable": "dm", "by": ["sex"]},
                {"id": "b", "kind": "bounds", "variable": "age", "edges": [0, 50, 100]},
            ],
        )
    )
    cells = layout(spec)
    assert cells == layout(QuerySpec.parse_json(spec.to_json()))
    sizes = {s.id: len(cells.positions(s.id)) for s in spec.statistics}
    # 3 sexes; 2 dm levels x (n, sum, sumsq); 4 bins + total; 3x2 cells + 3 + 2 margins
    # + total; 3 sexes x (yes, no, n); 4 bins
    assert sizes == {"n": 3, "age": 6, "h": 5, "t": 12, "p": 9, "b": 4}
    assert all(c.count for c in cells if c.part in ("n", "bin", "cell", "margin", "yes", "no"))
    assert not any(c.count for c in cells if c.part in ("sum", "sumsq", "occupied"))


def test_a_spec_too_large_for_a_vector_is_refused() -> None:
    bands = [{"label": f"b{i}", "min": i, "max": i} for i in range(100)]
    cats = [{"label": f"c{i}", "codes": [{"system": "S", "code": f"x{i}"}]} for i in range(100)]
    data = _spec(
        variables={
            "band": {"kind": "age_band", "bands": bands},
            "obs": {"kind": "observation_category", "system": "S", "code": "o", "categories": cats},
        },
        statistics=[
            {"id": f"t{i}", "kind": "table", "variables": ["band", "obs"]} for i in range(11)
        ],
    )
    with pytest.raises(SpecError, match="cells"):
        QuerySpec.parse(data)


@pytest.mark.parametrize("kind", ["sum", "mean", "variance"])
def test_the_sum_of_a_zero_one_variable_is_a_count_only_dp_answers(kind: str) -> None:
    """'Sum of male by sex' among diabetics would give the women as a plain number: no
    minimum cell size protects a sum. The spec parses (a DP project may ask it); exact
    answers are refused, with what to ask instead."""
    variables = {
        "sex": {"kind": "sex"},
        "male": {"kind": "is", "of": "sex", "category": "male"},
        "age": {"kind": "age"},
    }
    binary = QuerySpec.parse(
        _spec(variables=variables, statistics=[{"id": "s", "kind": kind, "variable": "male"}])
    )
    reason = counted_sums(binary)
    assert reason is not None and "proportion" in reason and "differential privacy" in reason
    numeric = QuerySpec.parse(
        _spec(variables=variables, statistics=[{"id": "s", "kind": kind, "variable": "age"}])
    )
    assert counted_sums(numeric) is None
