"""The federated query spec: who is in the cohort, which variables, which statistics.

A `QuerySpec` is JSON in and out (pydantic v2, frozen, unknown fields refused). It is the
whole question: every node computes from it alone, and `layout(spec)` derives from it
alone the cells each node contributes, so every node's vector has the same length and
meaning without looking at data. docs/analytics.md is the reference for researchers.

Shape:

- `cohort`: filters ANDed. Each filter names a domain (condition, drug, measurement,
  observation, procedure), a code system and a code (`C22*` is a prefix), optionally a
  value range (measurement/observation), an observation value code, a date window, and
  `present: false` for absence. Cohort-level `sex` and `age` (years at `reference_date`),
  and `exclude` groups (e.g. men aged 37) removed from the cohort.
- `variables`: named features: `age`, `sex`, `age_band`, `measurement` (earliest or
  latest value), `has` (0/1 presence of a code), `observation_category` (an observation's
  value code mapped to listed categories), `is` (0/1 from a categorical variable).
  Numeric variables take an optional linear transform `(x - centre) / scale`.
- `statistics`: count, sum, mean, variance, histogram, quantiles, table, proportion,
  bounds and logistic, each with a short `id`.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from medspace.analytics._spec_base import (
    DEFAULT_REFERENCE_DATE,
    MAX_CATEGORIES,
    MAX_COVARIATES,
    MAX_EDGES,
    MAX_FILTERS,
    MAX_STATISTICS,
    MAX_VARIABLES,
    RESERVED_LABELS,
    SPEC_VERSION,
    Code,
    Domain,
    Finite,
    Label,
    Pick,
    StatisticId,
    System,
    VariableName,
    _Model,
)
from medspace.analytics.errors import (
    SpecError,
)
from medspace.analytics.spec_cohort import (
    AgeRange,
    CodeFilter,
    CodeRef,
    Cohort,
    CohortFilter,
    Criteria,
)
from medspace.analytics.spec_statistics import (
    BoundsStat,
    CountStat,
    Edges,
    HistogramStat,
    LogisticStat,
    MeanStat,
    ProportionStat,
    QuantilesStat,
    Statistic,
    SumStat,
    TableStat,
    VarianceStat,
    _Binned,
    _Grouped,
)
from medspace.analytics.spec_variables import (
    BINARY_KINDS,
    CATEGORICAL_KINDS,
    NUMERIC_KINDS,
    AgeBandVar,
    AgeVar,
    Band,
    Category,
    HasVar,
    IsVar,
    MeasurementVar,
    ObservationCategoryVar,
    SexVar,
    Variable,
    categories_of,
)
from medspace.frozen import FrozenDict

__all__ = [
    "BINARY_KINDS",
    "CATEGORICAL_KINDS",
    "DEFAULT_REFERENCE_DATE",
    "MAX_CATEGORIES",
    "MAX_COVARIATES",
    "MAX_EDGES",
    "MAX_FILTERS",
    "MAX_STATISTICS",
    "MAX_VARIABLES",
    "NUMERIC_KINDS",
    "RESERVED_LABELS",
    "RESERVED_NAMES",
    "SPEC_VERSION",
    "AgeBandVar",
    "AgeRange",
    "AgeVar",
    "Band",
    "BoundsStat",
    "Category",
    "Code",
    "CodeFilter",
    "CodeRef",
    "Cohort",
    "CohortFilter",
    "CountStat",
    "Criteria",
    "Domain",
    "Edges",
    "Finite",
    "HasVar",
    "HistogramStat",
    "IsVar",
    "Label",
    "LogisticStat",
    "MeanStat",
    "MeasurementVar",
    "ObservationCategoryVar",
    "Pick",
    "ProportionStat",
    "QuantilesStat",
    "QuerySpec",
    "SexVar",
    "SpecError",
    "Statistic",
    "StatisticId",
    "SumStat",
    "System",
    "TableStat",
    "Variable",
    "VariableName",
    "VarianceStat",
    "categories_of",
    "counted_sums",
    "used_variables",
]

# -- the spec ------------------------------------------------------------------------


class QuerySpec(_Model):
    """A federated query. Build from untrusted input with `QuerySpec.parse`."""

    version: Literal[1] = 1
    title: str | None = Field(default=None, max_length=200)
    reference_date: date = DEFAULT_REFERENCE_DATE
    cohort: Cohort = Cohort()
    variables: dict[VariableName, Variable] = Field(
        default_factory=FrozenDict, max_length=MAX_VARIABLES
    )
    statistics: tuple[Statistic, ...] = Field(min_length=1, max_length=MAX_STATISTICS)

    @classmethod
    def parse(cls, data: Any) -> QuerySpec:
        """Validate untrusted input (a dict); raises `SpecError` naming each bad field."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise SpecError(f"invalid query spec: {_describe(exc)}; fix these fields") from None

    @classmethod
    def parse_json(cls, text: str | bytes) -> QuerySpec:
        """Validate JSON text; raises `SpecError` naming each bad field."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise SpecError(f"invalid query spec: {_describe(exc)}; fix these fields") from None

    def to_json(self) -> str:
        """Compact JSON (defaults included) that `parse_json` reads back to an equal spec."""
        return self.model_dump_json()

    def digest(self) -> str:
        """SHA-256 (hex) of `to_json()`: names this exact question in logs and ledgers."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def statistic(self, statistic_id: str) -> Statistic:
        """The statistic with this id; raises `SpecError` when there is none."""
        for stat in self.statistics:
            if stat.id == statistic_id:
                return stat
        raise SpecError(f"the spec has no statistic {statistic_id!r}")

    def computations(self) -> tuple[str, ...]:
        """The statistic kinds the spec asks for (sorted, unique): what a project's
        `computations` must allow."""
        return tuple(sorted({s.kind for s in self.statistics}))

    def data_fields(self, *, every_variable: bool = False) -> tuple[str, ...]:
        """The store fields the query reads (e.g. `person.sex`, `condition.code`),
        sorted: what a project's `variables` should cover. With `every_variable`, the
        fields of every variable the spec defines, used or not (an analysis session
        keeps them all for its later statistics)."""
        fields = {"person.id"}
        for criteria in (self.cohort, *self.cohort.exclude):
            for flt in criteria.filters:
                fields |= _filter_fields(flt)
            if criteria.sex is not None:
                fields.add("person.sex")
            if criteria.age is not None:
                fields.add("person.birth_date")
        used = set(self.variables) if every_variable else used_variables(self)
        for name in used:
            var = self.variables[name]
            if isinstance(var, AgeVar | AgeBandVar):
                fields.add("person.birth_date")
            elif isinstance(var, SexVar):
                fields.add("person.sex")
            elif isinstance(var, MeasurementVar):
                fields |= {"measurement.code", "measurement.value"}
            elif isinstance(var, HasVar):
                fields |= _filter_fields(var)
            elif isinstance(var, ObservationCategoryVar):
                fields |= {"observation.code", "observation.value_code"}
        return tuple(sorted(fields))

    @field_validator("variables")
    @classmethod
    def _variables_frozen(cls, variables: dict[str, Variable]) -> dict[str, Variable]:
        # Names derived from the variables are remembered per dict object
        # (`medspace.analytics.released`): one changed in place would leave them stale.
        return FrozenDict(variables)

    @model_validator(mode="after")
    def _references(self) -> QuerySpec:
        ids = [s.id for s in self.statistics]
        if len(set(ids)) != len(ids):
            raise ValueError("statistic ids must be unique")
        clashes = sorted(set(self.variables) & RESERVED_NAMES)
        if clashes:
            raise ValueError(
                f"the variable name {clashes[0]} is taken by the node's database (its "
                "patient key or a PostgreSQL system column); rename it"
            )
        for name, var in self.variables.items():
            if isinstance(var, IsVar):
                parent = self.variables.get(var.of)
                if parent is None or parent.kind not in ("sex", "age_band", "observation_category"):
                    raise ValueError(
                        f"variable {name}: 'of' must name a sex, age_band or "
                        "observation_category variable"
                    )
                if var.category not in categories_of(parent):
                    raise ValueError(f"variable {name}: category is not one of {var.of}'s")
        for stat in self.statistics:
            self._check_statistic(stat)
        from medspace.analytics.layout import MAX_CELLS, layout

        if len(layout(self).cells) > MAX_CELLS:
            raise ValueError(f"the statistics need more than {MAX_CELLS} cells; ask for fewer")
        return self

    def _need(self, stat_id: str, name: str, kinds: frozenset[str], what: str) -> None:
        var = self.variables.get(name)
        if var is None:
            raise ValueError(f"statistic {stat_id}: variable {name} is not defined")
        if var.kind not in kinds:
            raise ValueError(f"statistic {stat_id}: variable {name} must be {what}")

    def _check_statistic(self, stat: Statistic) -> None:
        if isinstance(stat, _Grouped):
            if len(set(stat.by)) != len(stat.by):
                raise ValueError(f"statistic {stat.id}: 'by' names a variable twice")
            for name in stat.by:
                self._need(stat.id, name, CATEGORICAL_KINDS, "categorical")
        if isinstance(stat, SumStat | MeanStat | VarianceStat | _Binned):
            self._need(stat.id, stat.variable, NUMERIC_KINDS, "numeric")
        if isinstance(stat, _Binned):
            from medspace.analytics.layout import bin_labels

            if self.variables[stat.variable].kind in BINARY_KINDS:
                # Its bins count the 0s and the 1s under a name rule 3 does not link to
                # the variable: a second copy of it that complementary suppression misses.
                raise ValueError(
                    f"statistic {stat.id}: a {stat.kind} of the 0/1 variable {stat.variable} "
                    "is its counts of 0 and 1; ask for its proportion, or a table by it"
                )
            labels = bin_labels(stat.edges)
            if len(set(labels)) != len(labels):
                raise ValueError(
                    f"statistic {stat.id}: edges so close that two bins print alike (6 "
                    "significant digits); use edges that differ within 6 digits"
                )
        elif isinstance(stat, ProportionStat):
            self._need(stat.id, stat.variable, BINARY_KINDS, "a 0/1 (has or is) variable")
        elif isinstance(stat, TableStat):
            if len(set(stat.variables)) != len(stat.variables):
                raise ValueError(f"statistic {stat.id}: a table names a variable twice")
            for name in stat.variables:
                self._need(stat.id, name, CATEGORICAL_KINDS, "categorical")
        elif isinstance(stat, LogisticStat):
            self._need(stat.id, stat.outcome, BINARY_KINDS, "a 0/1 (has or is) variable")
            if len(set(stat.covariates)) != len(stat.covariates) or stat.outcome in stat.covariates:
                raise ValueError(f"statistic {stat.id}: covariates repeat or include the outcome")
            for name in stat.covariates:
                self._need(stat.id, name, NUMERIC_KINDS, "numeric or 0/1")


RESERVED_NAMES = frozenset({"pid", "oid", "tableoid", "xmin", "xmax", "cmin", "cmax", "ctid"})
"""Variable names the node's feature tables cannot take: its patient key, and the system
columns PostgreSQL gives every table."""


def counted_sums(spec: QuerySpec) -> str | None:
    """Why the spec may not be answered exactly (None when it may): the sum, mean or
    variance of a 0/1 variable is a count of patients that no minimum cell size
    protects ("sum of diabetes by sex" gives the women with diabetes as a plain
    number). Under differential privacy the noise protects it, so only exact answers
    are refused."""
    for stat in spec.statistics:
        if not isinstance(stat, SumStat | MeanStat | VarianceStat):
            continue
        if spec.variables[stat.variable].kind in BINARY_KINDS:
            return (
                f"statistic {stat.id}: the sum, mean or variance of the 0/1 variable "
                f"{stat.variable} counts patients, which only a project with differential "
                "privacy answers; ask for its proportion, whose yes and no cells get the "
                "minimum cell size"
            )
    return None


def _filter_fields(flt: CodeFilter) -> set[str]:
    fields = {f"{flt.domain}.code"}
    if flt.min is not None or flt.max is not None:
        fields.add(f"{flt.domain}.value")
    if flt.value_code is not None:
        fields.add(f"{flt.domain}.value_code")
    if flt.after is not None or flt.before is not None:
        fields.add(f"{flt.domain}.date")
    return fields


def used_variables(spec: QuerySpec) -> set[str]:
    used: set[str] = set()
    for stat in spec.statistics:
        used |= set(getattr(stat, "by", ()))
        for attr in ("variable", "outcome"):
            if isinstance(getattr(stat, attr, None), str):
                used.add(getattr(stat, attr))
        used |= set(getattr(stat, "variables", ()))
        used |= set(getattr(stat, "covariates", ()))
    for name in list(used):
        var = spec.variables.get(name)
        if isinstance(var, IsVar):
            used.add(var.of)
    return {u for u in used if u in spec.variables}


def _describe(exc: ValidationError) -> str:
    """'field: problem; ...' naming locations and rules, never the input values."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "spec"
        message = re.sub(r"\s+", " ", error["msg"])
        parts.append(f"{where}: {message}")
    return "; ".join(parts[:20])
