"""The statistics a query spec may ask for, each with a short id."""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

from pydantic import Field, field_validator

from medspace.analytics._spec_base import (
    MAX_COVARIATES,
    MAX_EDGES,
    Finite,
    StatisticId,
    VariableName,
    _Model,
)

# -- statistics ----------------------------------------------------------------------


class _Statistic(_Model):
    id: StatisticId
    label: str | None = Field(default=None, max_length=200)


class _Grouped(_Statistic):
    by: tuple[VariableName, ...] = Field(default=(), max_length=2)


class CountStat(_Grouped):
    """Patients in the cohort (per group of `by`)."""

    kind: Literal["count"]


class SumStat(_Grouped):
    """Sum of a numeric variable over patients where it is not missing."""

    kind: Literal["sum"]
    variable: VariableName


class MeanStat(_Grouped):
    """Mean of a numeric variable (and its n)."""

    kind: Literal["mean"]
    variable: VariableName


class VarianceStat(_Grouped):
    """Sample variance and standard deviation of a numeric variable (with n and mean)."""

    kind: Literal["variance"]
    variable: VariableName


Edges = Annotated[tuple[Finite, ...], Field(min_length=2, max_length=MAX_EDGES)]


class _Binned(_Statistic):
    variable: VariableName
    edges: Edges

    @field_validator("edges")
    @classmethod
    def _increasing(cls, edges: tuple[float, ...]) -> tuple[float, ...]:
        if any(b <= a for a, b in itertools.pairwise(edges)):
            raise ValueError("edges must be strictly increasing")
        return edges


class HistogramStat(_Binned):
    """Counts in fixed bins [e_i, e_i+1), plus one bin below the first and one from the
    last edge up."""

    kind: Literal["histogram"]


class QuantilesStat(_Binned):
    """Quantiles interpolated within a fixed-bin histogram: the error is at most one bin
    width."""

    kind: Literal["quantiles"]
    probabilities: tuple[Annotated[float, Field(gt=0, lt=1)], ...] = Field(
        default=(0.25, 0.5, 0.75), min_length=1, max_length=99
    )


class TableStat(_Statistic):
    """Contingency table of one or two categorical variables, with margins."""

    kind: Literal["table"]
    variables: tuple[VariableName, ...] = Field(min_length=1, max_length=2)


class ProportionStat(_Grouped):
    """Share of patients with a 0/1 variable = 1 among those where it is not missing,
    with a Wilson score interval."""

    kind: Literal["proportion"]
    variable: VariableName
    confidence: float = Field(default=0.95, gt=0.5, lt=1)


class BoundsStat(_Binned):
    """Lower and upper bounds of a numeric variable, rounded outwards to `edges`: the
    result names bin edges, never a patient's value."""

    kind: Literal["bounds"]


class LogisticStat(_Statistic):
    """Logistic regression of a 0/1 outcome on covariates, fitted exactly by federated
    Newton-Raphson (complete cases only)."""

    kind: Literal["logistic"]
    outcome: VariableName
    covariates: tuple[VariableName, ...] = Field(min_length=1, max_length=MAX_COVARIATES)
    intercept: bool = True
    max_iterations: int = Field(default=25, ge=1, le=100)
    tolerance: float = Field(default=1e-8, gt=0, le=1e-2)


Statistic = Annotated[
    CountStat
    | SumStat
    | MeanStat
    | VarianceStat
    | HistogramStat
    | QuantilesStat
    | TableStat
    | ProportionStat
    | BoundsStat
    | LogisticStat,
    Field(discriminator="kind"),
]
