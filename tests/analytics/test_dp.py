"""OpenDP noise on combined results: really there, at the stated scale, within the epsilon.

OpenDP samples from the operating system's cryptographic RNG and cannot be seeded, so the
statistical checks use thousands of draws and bounds many standard errors wide.
"""

from __future__ import annotations

import statistics
from decimal import Decimal

import pytest

from medspace.analytics import QuerySpec, layout
from medspace.analytics.budget import EpsilonError
from medspace.analytics.dp import (
    COUNT,
    DEFAULT_SHARE,
    SUM,
    SUMSQ,
    DPUnsupported,
    NoiseGroup,
    _float_at_most,
    check_supported,
    noise_plan,
    privatize,
    query_epsilon,
    release,
    split_epsilon,
)
from medspace.errors import UsageError

DRAWS = 5000


def test_noise_is_added_and_differs_between_runs() -> None:
    groups = [NoiseGroup("n", "n", (0,), COUNT), NoiseGroup("s", "sum", (1,), SUM, bound=50.0)]
    runs = {tuple(privatize([120.0, 4321.5], groups, Decimal("0.5"))[0]) for _ in range(20)}
    assert len(runs) > 1
    assert all(run != (120.0, 4321.5) for run in runs)


def test_count_noise_has_the_stated_discrete_laplace_scale() -> None:
    # epsilon 0.5 for one count of sensitivity 1: scale 1 / 0.5 = 2.
    true = 1000.0
    group = NoiseGroup("n", "bin", tuple(range(DRAWS)), COUNT)
    noisy, release = privatize([true] * DRAWS, [group], Decimal("0.5"))
    assert release.groups[0].scale == pytest.approx(2.0)
    assert release.groups[0].mechanism == "discrete Laplace"
    errors = [value - true for value in noisy]
    assert all(value == int(value) for value in noisy)  # counts stay whole numbers
    # For Laplace(b), E|X| = b and sd|X| = b: the mean of 5000 draws is within 0.03 b
    # (2 sd); 0.3 b is 20 sd, so this cannot flake, yet catches a wrong scale.
    assert statistics.fmean(abs(e) for e in errors) == pytest.approx(2.0, rel=0.3)
    assert abs(statistics.fmean(errors)) < 0.3  # unbiased
    assert len(set(errors)) > 5


def test_sum_noise_scale_is_the_clamp_bound_over_epsilon() -> None:
    group = NoiseGroup("age", "sum", tuple(range(DRAWS)), SUM, bound=90.0)
    noisy, release = privatize([5000.0] * DRAWS, [group], Decimal("1"))
    assert release.groups[0].sensitivity == 90.0
    assert release.groups[0].scale == pytest.approx(90.0)
    assert statistics.fmean(abs(v - 5000.0) for v in noisy) == pytest.approx(90.0, rel=0.3)


def test_sum_of_squares_uses_the_squared_bound() -> None:
    group = NoiseGroup("x", "sumsq", (0,), SUMSQ, bound=12.0)
    _, release = privatize([10.0], [group], Decimal("2"))
    assert release.groups[0].sensitivity == 144.0
    assert release.groups[0].scale == pytest.approx(72.0)


def test_a_person_at_several_nodes_raises_the_sensitivity() -> None:
    group = NoiseGroup("n", "n", (0,), COUNT)
    _, release = privatize([10.0], [group], Decimal("1"), contributions=3)
    assert release.groups[0].sensitivity == 3.0
    assert release.groups[0].scale == pytest.approx(3.0)
    assert release.contributions == 3


def test_counts_never_come_back_negative() -> None:
    group = NoiseGroup("n", "bin", tuple(range(500)), COUNT)
    noisy, _ = privatize([0.0] * 500, [group], Decimal("0.1"))
    assert min(noisy) == 0.0
    assert max(noisy) > 0.0


def test_a_sum_without_a_finite_clamp_bound_is_refused() -> None:
    group = NoiseGroup("x", "sum", (0,), SUM, bound=float("inf"))
    with pytest.raises(DPUnsupported, match="no finite bound on one patient"):
        privatize([1.0], [group], Decimal("1"))


def test_the_shares_never_add_up_to_more_than_the_query_epsilon() -> None:
    groups = [
        NoiseGroup("a", "n", (0,), COUNT),
        NoiseGroup("b", "n", (1,), COUNT),
        NoiseGroup("b", "sum", (2,), SUM, bound=1.0),
        NoiseGroup("c", "n", (3,), COUNT),
        NoiseGroup("c", "sum", (4,), SUM, bound=1.0),
        NoiseGroup("c", "sumsq", (5,), SUMSQ, bound=1.0),
    ]
    epsilon = Decimal("1")
    shares = split_epsilon(epsilon, groups)
    assert sum(shares) <= epsilon
    assert shares[0] - (shares[1] + shares[2]) < Decimal("1e-20")  # equal per statistic
    assert epsilon - sum(shares) < Decimal("1e-20")
    _, release = privatize([5.0, 5.0, 5.0, 5.0, 5.0, 5.0], groups, epsilon)
    assert sum(g.epsilon for g in release.groups) <= epsilon
    # OpenDP's own privacy map of each noised group stays within its share.
    for group in release.groups:
        assert group.sensitivity / group.scale <= float(group.epsilon)


def test_float_conversion_never_rounds_an_epsilon_up() -> None:
    third = Decimal(1) / Decimal(3)
    assert Decimal(_float_at_most(third)) <= third
    assert Decimal(_float_at_most(Decimal("0.1"))) <= Decimal("0.1")


def test_a_query_without_an_epsilon_spends_the_default_share() -> None:
    assert query_epsilon(None, Decimal("2")) == Decimal("2") / DEFAULT_SHARE
    assert query_epsilon(Decimal("0.3"), Decimal("2")) == Decimal("0.3")
    with pytest.raises(EpsilonError):
        query_epsilon(Decimal("0.0000001"), Decimal("2"))


@pytest.mark.parametrize(
    "groups",
    [
        [NoiseGroup("n", "n", (3,), COUNT)],  # a cell beyond the vector
        [NoiseGroup("n", "n", (0,), COUNT), NoiseGroup("m", "n", (0,), COUNT)],  # noised twice
    ],
)
def test_groups_must_name_each_cell_once_and_inside_the_result(groups: list[NoiseGroup]) -> None:
    with pytest.raises(UsageError, match="outside the result or in two"):
        privatize([1.0, 2.0], groups, Decimal("1"))


def test_a_count_cell_holding_a_fraction_is_refused() -> None:
    with pytest.raises(UsageError, match="non-integer"):
        privatize([1.5], [NoiseGroup("n", "n", (0,), COUNT)], Decimal("1"))


def test_the_release_record_is_json_with_decimal_strings() -> None:
    _, release = privatize([3.0], [NoiseGroup("n", "n", (0,), COUNT)], Decimal("0.25"))
    data = release.model_dump(mode="json")
    assert data["epsilon"] == "0.25"
    assert data["groups"][0]["epsilon"] == "0.25"
    assert release.ledger_body()["dp_epsilon"] == "0.25"


# -- noise plans from a real spec and layout -------------------------------------------


def _spec(**changes: object) -> QuerySpec:
    data: dict[str, object] = {
        "cohort": {"filters": [{"domain": "condition", "system": "ICD-10", "code": "C22*"}]},
        "variables": {
            "sex": {"kind": "sex"},
            "band": {
                "kind": "age_band",
                "bands": [
                    {"label": "<60", "min": 0, "max": 59},
                    {"label": "60+", "min": 60, "max": 200},
                ],
            },
            "diabetes": {"kind": "has", "domain": "condition", "system": "ICD-10", "code": "E11*"},
            "hba1c": {"kind": "measurement", "system": "LOINC", "code": "4548-4", "centre": 6.0},
            "age": {"kind": "age"},
        },
        "statistics": [
            {"id": "n", "kind": "count", "by": ["sex"]},
            {"id": "dm", "kind": "proportion", "variable": "diabetes", "by": ["band"]},
            {"id": "dm_mean", "kind": "mean", "variable": "diabetes"},
            {"id": "t", "kind": "table", "variables": ["band", "sex"]},
            {"id": "h", "kind": "histogram", "variable": "age", "edges": [40, 60, 80]},
        ],
    }
    data.update(changes)
    return QuerySpec.parse(data)


def test_every_cell_of_the_layout_is_in_exactly_one_group() -> None:
    spec = _spec()
    cells = layout(spec)
    groups = noise_plan(spec, cells)
    covered = sorted(i for g in groups for i in g.cells)
    assert covered == list(range(len(cells)))


def test_a_patient_is_in_at_most_one_cell_of_each_group() -> None:
    # Each group's cells must have disjoint populations: for count cells, two cells of a
    # group never share every condition variable with compatible values.
    spec = _spec()
    cells = layout(spec)
    for group in noise_plan(spec, cells):
        if group.kind != COUNT:
            continue
        pops = [dict(cells.cells[i].population) for i in group.cells]
        for a in range(len(pops)):
            for b in range(a + 1, len(pops)):
                shared = set(pops[a]) & set(pops[b])
                assert any(pops[a][v] != pops[b][v] for v in shared), (group, a, b)


def test_table_margins_are_noised_per_axis_and_proportions_as_yes_or_no() -> None:
    spec = _spec()
    parts = {(g.statistic, g.part) for g in noise_plan(spec, layout(spec))}
    assert {("t", "cell"), ("t", "margin over axis 1"), ("t", "margin over axis 2")} <= parts
    assert ("dm", "yes/no") in parts


def test_a_zero_one_variable_has_sum_bound_one() -> None:
    spec = _spec()
    sums = [g for g in noise_plan(spec, layout(spec)) if g.kind == SUM]
    assert [(g.statistic, g.bound) for g in sums] == [("dm_mean", 1.0)]


def test_a_mean_of_an_unclamped_measurement_is_refused_under_dp() -> None:
    spec = _spec(statistics=[{"id": "a1c", "kind": "mean", "variable": "hba1c"}])
    with pytest.raises(DPUnsupported, match="a1c: variable hba1c has no clamp bounds"):
        check_supported(spec)


def test_age_is_bounded_by_the_cohort_age_range() -> None:
    spec = _spec(
        cohort={"age": {"min": 18, "max": 90}},
        statistics=[{"id": "age_sd", "kind": "variance", "variable": "age"}],
    )
    groups = {g.part: g for g in noise_plan(spec, layout(spec))}
    assert groups["sum"].sensitivity(1) == 90.0
    assert groups["sumsq"].sensitivity(1) == 8100.0


@pytest.mark.parametrize(
    ("statistic", "reason"),
    [
        (
            {"id": "fit", "kind": "logistic", "outcome": "diabetes", "covariates": ["age"]},
            "logistic regression is not released",
        ),
        ({"id": "b", "kind": "bounds", "variable": "age", "edges": [0, 50, 100]}, "quantiles"),
    ],
)
def test_statistics_without_a_sound_dp_release_are_refused(
    statistic: dict[str, object], reason: str
) -> None:
    with pytest.raises(DPUnsupported, match=reason):
        check_supported(_spec(statistics=[statistic]))


def test_release_noises_a_summed_vector_of_the_layout() -> None:
    spec = _spec()
    cells = layout(spec)
    total = [float(20 + i) if c.part != "sum" else 30.0 for i, c in enumerate(cells.cells)]
    noisy, info = release(spec, cells, total, Decimal("1"))
    assert len(noisy) == len(total)
    assert noisy != total
    assert sum(g.epsilon for g in info.groups) <= Decimal("1")
    with pytest.raises(UsageError, match="layout"):
        release(spec, cells, total[:-1], Decimal("1"))


def test_a_transformed_variable_is_bounded_after_its_transform() -> None:
    # (age - 60) / 10 for ages 18..90 lies in [-4.2, 3]: one patient adds at most 4.2.
    spec = _spec(
        cohort={"age": {"min": 18, "max": 90}},
        variables={"age": {"kind": "age", "centre": 60, "scale": 10}},
        statistics=[{"id": "age_mean", "kind": "mean", "variable": "age"}],
    )
    groups = {g.part: g for g in noise_plan(spec, layout(spec))}
    assert groups["sum"].sensitivity(1) == pytest.approx(4.2)
