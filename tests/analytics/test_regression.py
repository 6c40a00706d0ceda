"""Federated logistic regression: summing the nodes' gradients and information matrices
gives exactly the pooled Newton-Raphson fit, recovers the simulated MI model, and nodes
refuse data that fail the nfilter rules."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import and_, select

from medspace.analytics import (
    AnalyticsError,
    DifferencingRefused,
    QuerySpec,
    RegressionRefused,
    RegressionSession,
    SpecError,
    design_matrix,
    fit_federated,
    logistic_result,
    logistic_summary,
    newton_step,
    pooled_logistic,
    regression_layout,
)
from medspace.analytics.features import feature_table
from medspace.analytics.local import cohort_person_ids
from medspace.node import Node, init_node, open_node

from .conftest import Hospital
from .population import MI_COEFFICIENTS, Person, outcomes, simulate

MI_SPEC = Path(__file__).parents[2] / "docs" / "examples" / "mi-logistic.json"


def _mi_spec(**changes: Any) -> QuerySpec:
    data = json.loads(MI_SPEC.read_text())
    data["statistics"][0].update(changes.pop("statistic", {}))
    data.update(changes)
    return QuerySpec.parse(data)


def _sessions(nodes: list[Node], spec: QuerySpec, k: int = 5) -> list[RegressionSession]:
    return [RegressionSession(n.store, spec, "mi_model", min_cell_size=k) for n in nodes]


def test_federated_fit_equals_the_pooled_fit(opened: list[Node]) -> None:
    spec = _mi_spec()
    beta, total, iterations, converged = fit_federated(_sessions(opened, spec))
    assert converged and iterations < 15
    pieces = [design_matrix(n.store, spec, "mi_model") for n in opened]
    x = np.vstack([p[0] for p in pieces])
    y = np.concatenate([p[1] for p in pieces])
    pooled = pooled_logistic(x, y)
    assert np.max(np.abs(np.array(beta) - pooled)) < 1e-6
    assert total[-1] == len(y)
    assert len(total) == regression_layout(6)


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Node]]:
    """Three hospitals of 1,500 simulated patients (4,500 in all)."""
    base = tmp_path_factory.mktemp("mi-large")
    nodes = []
    for seed, name in enumerate(("a1", "a2", "a3"), start=11):
        init_node(base / name, name)
        node = open_node(base / name)
        node.store.ingest(outcomes(simulate(1500, seed=seed, prefix=f"{name}-")), source=name)
        nodes.append(node)
    yield nodes
    for node in nodes:
        node.close()


def test_the_mi_model_is_recovered_from_4500_patients(large: list[Node]) -> None:
    spec = _mi_spec()
    sessions = _sessions(large, spec)
    beta, total, iterations, converged = fit_federated(sessions)
    result = logistic_result(
        spec.statistic("mi_model"),  # type: ignore[arg-type]
        beta,
        total,
        iterations=iterations,
        converged=converged,
    )
    assert converged
    for coefficient in result.coefficients:
        truth = MI_COEFFICIENTS[coefficient.name]
        # within four standard errors of the simulated truth (fixed seeds: deterministic)
        assert abs(coefficient.estimate - truth) < 4 * coefficient.std_error, coefficient
        assert 0 < coefficient.std_error < 0.5
    assert result.coefficients[1].p_value < 1e-6  # age matters


def test_a_small_node_refuses_the_regression(opened: list[Node]) -> None:
    spec = _mi_spec(cohort={"age": {"min": 50, "max": 50}})  # about 6 patients a node
    with pytest.raises(RegressionRefused, match="complete cases") as caught:
        _sessions(opened[:1], spec)
    assert caught.value.code == "nfilter-cohort"


def test_a_sparse_outcome_level_is_refused(opened: list[Node]) -> None:
    with pytest.raises(RegressionRefused, match="level of mi") as caught:
        _sessions(opened[:1], _mi_spec(), k=80)
    assert caught.value.code == "nfilter-level"


def test_a_constant_covariate_is_refused(opened: list[Node]) -> None:
    spec = _mi_spec(
        cohort={"filters": [{"domain": "condition", "system": "ICD-10", "code": "E11.9"}]}
    )
    with pytest.raises(RegressionRefused, match="diabetes is constant") as caught:
        _sessions(opened[:1], spec)
    assert caught.value.code == "nfilter-constant"


def test_collinear_covariates_are_reported_not_fitted(opened: list[Node]) -> None:
    data = json.loads(MI_SPEC.read_text())
    data["variables"]["age_years"] = {"kind": "age"}
    data["statistics"][0]["covariates"] = ["age", "age_years"]
    spec = QuerySpec.parse(data)
    with pytest.raises(AnalyticsError, match="singular"):
        fit_federated(_sessions(opened, spec))


def test_step_checks_its_input(opened: list[Node]) -> None:
    session = _sessions(opened[:1], _mi_spec())[0]
    with pytest.raises(SpecError, match="6 finite"):
        session.step([0.0] * 5)
    with pytest.raises(SpecError, match="6 finite"):
        session.step([math.nan] * 6)
    vector = session.step([0.0] * 6)
    assert len(vector) == regression_layout(6)
    information = np.array(vector[6:42]).reshape(6, 6)
    assert np.allclose(information, information.T)


def test_newton_step_and_summary_on_a_known_vector() -> None:
    # One parameter: gradient 2, information 4 -> step 0.5; se = 1/sqrt(4)
    new, converged = newton_step([1.0], [2.0, 4.0, -10.0, 50.0])
    assert new == [1.5] and not converged
    (coef,) = logistic_summary([1.96 * 0.5], [0.0, 4.0, -10.0, 50.0], ["x"])
    assert coef.std_error == 0.5
    assert math.isclose(coef.z, 1.96) and math.isclose(coef.p_value, 0.05, abs_tol=1e-3)
    with pytest.raises(SpecError):
        newton_step([1.0, 2.0], [2.0, 4.0, -10.0, 50.0])


def test_the_design_matrix_covers_complete_cases_only(
    hospitals: list[Hospital], opened: list[Node]
) -> None:
    x, y = design_matrix(opened[0].store, _mi_spec(), "mi_model")
    people = hospitals[0].people
    complete = [p for p in people if p.age is not None and p.sex in ("female", "male")]
    assert len(y) == len(complete)
    assert set(np.unique(y)) == {0.0, 1.0}
    assert np.all(x[:, 0] == 1.0)


# 0/1 covariates are fetched packed 30 to an integer: 33 of them, between numeric ones,
# span two packed integers
_BINARY = [
    {"kind": "has", "domain": "condition", "system": "ICD-10", "code": "E11.9"},
    {"kind": "has", "domain": "condition", "system": "ICD-10", "code": "I10"},
    {"kind": "is", "of": "sex", "category": "male"},
    {"kind": "has", "domain": "condition", "system": "ICD-10", "code": "C22*"},
]


def _wide_spec(intercept: bool) -> QuerySpec:
    data = json.loads(MI_SPEC.read_text())
    covariates = ["hba1c"]
    for i in range(33):
        data["variables"][f"b{i}"] = _BINARY[i % len(_BINARY)]
        covariates.append(f"b{i}")
        if i == 16:
            covariates.append("age")
    data["statistics"][0].update({"covariates": covariates, "intercept": intercept})
    return QuerySpec.parse(data)


def _plain_design(node: Node, spec: QuerySpec) -> tuple[np.ndarray, np.ndarray]:
    """The oracle: every column of the feature subquery fetched as it is, no packing."""
    stat = spec.statistic("mi_model")
    names = [stat.outcome, *stat.covariates]  # type: ignore[union-attr]
    with node.store.connect() as conn:
        f = feature_table(spec, names, (), conn.dialect.name)
        columns = [f.c[n] for n in names]
        query = select(*columns).where(and_(*(c.is_not(None) for c in columns)))
        rows = conn.execute(query.order_by(f.c.pid)).all()
    data = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
    x = data[:, 1:]
    if stat.intercept:  # type: ignore[union-attr]
        x = np.hstack([np.ones((len(rows), 1)), x])
    return x, data[:, 0]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def either_node(request: pytest.FixtureRequest, opened: list[Node]) -> Node:
    """Hospital h1 on SQLite, or the same simulated patients on PostgreSQL."""
    if request.param == "sqlite":
        return opened[0]
    pg: tuple[Node, list[Person]] = request.getfixturevalue("pg_hospital")
    return pg[0]


@pytest.mark.parametrize("intercept", [True, False])
def test_packed_binary_columns_read_back_exactly(either_node: Node, intercept: bool) -> None:
    spec = _wide_spec(intercept)
    x, y = design_matrix(either_node.store, spec, "mi_model")
    want_x, want_y = _plain_design(either_node, spec)
    assert x.shape == want_x.shape == (len(y), 35 + intercept)
    assert np.array_equal(x, want_x) and np.array_equal(y, want_y)
    assert {0.0, 1.0} == set(np.unique(x[:, intercept + 1 : intercept + 17]))


def test_the_audit_gets_the_whole_cohort_from_the_sessions_own_pass(
    hospitals: list[Hospital], opened: list[Node]
) -> None:
    node = opened[0]
    leaving = [node.store.pseudonym(p.source_id) for p in hospitals[0].people[:9]]
    spec = _mi_spec()
    for exclude in ((), leaving):
        seen: list[np.ndarray] = []
        session = RegressionSession(
            node.store,
            spec,
            "mi_model",
            exclude_pseudonyms=exclude,
            min_cell_size=5,
            audit=seen.append,
        )
        (ids,) = seen
        assert np.array_equal(ids, cohort_person_ids(node.store, spec, exclude))
        assert session.step([0.0] * 6)[-1] <= ids.size  # complete cases of that cohort


def test_the_audit_refuses_before_the_nfilter_rules_are_checked(opened: list[Node]) -> None:
    """A narrowed cohort must be refused as a narrowed cohort: an nfilter refusal of it
    would tell whether the few patients left out had the rarer outcome."""
    spec = _mi_spec(cohort={"age": {"min": 50, "max": 50}})  # nfilter-cohort refuses it

    def audit(ids: np.ndarray) -> None:
        raise DifferencingRefused("differs from a cohort already answered")

    with pytest.raises(DifferencingRefused, match="differs"):
        RegressionSession(opened[0].store, spec, "mi_model", min_cell_size=5, audit=audit)


@pytest.mark.slow
def test_thirty_thousand_patients_fit_federated_as_pooled(tmp_path: Path) -> None:
    nodes = []
    for seed, name in enumerate(("s1", "s2", "s3"), start=21):
        init_node(tmp_path / name, name)
        node = open_node(tmp_path / name)
        node.store.ingest(outcomes(simulate(10_000, seed=seed, prefix=f"{name}-")), source=name)
        nodes.append(node)
    try:
        spec = _mi_spec()
        beta, total, _, converged = fit_federated(_sessions(nodes, spec))
        pieces = [design_matrix(n.store, spec, "mi_model") for n in nodes]
        pooled = pooled_logistic(
            np.vstack([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces])
        )
        assert converged
        assert np.max(np.abs(np.array(beta) - pooled)) < 1e-6
        names = ("intercept", "age", "male", "diabetes", "hypertension", "hba1c")
        for coefficient in logistic_summary(beta, total, names):
            truth = MI_COEFFICIENTS[coefficient.name]
            assert abs(coefficient.estimate - truth) < 4 * coefficient.std_error
    finally:
        for node in nodes:
            node.close()
