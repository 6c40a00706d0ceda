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
import itertools
import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from medspace.analytics.errors import SpecError
from medspace.model.records import Sex

SPEC_VERSION = 1
DEFAULT_REFERENCE_DATE = date(2024, 1, 1)
MAX_FILTERS = 50
MAX_VARIABLES = 100
MAX_STATISTICS = 50
MAX_CATEGORIES = 100
MAX_EDGES = 1001
MAX_COVARIATES = 50

Domain = Literal["condition", "drug", "measurement", "observation", "procedure"]
Pick = Literal["earliest", "latest"]

_CODE = r"^[A-Za-z0-9][A-Za-z0-9.\-_/]{0,63}\*?$"
_SYSTEM = r"^[A-Za-z][A-Za-z0-9 .:/\-_]{0,127}$"
VariableName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
StatisticId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_\-]{0,39}$")]
Label = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[^\x00-\x1f]+$")]
#: Labels the layout uses for margins and totals; no category may be called that.
RESERVED_LABELS = frozenset({"all", "total"})
Code = Annotated[str, Field(pattern=_CODE)]
System = Annotated[str, Field(pattern=_SYSTEM)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _unreserved(label: str) -> str:
    if label.lower() in RESERVED_LABELS:
        raise ValueError(f"'{label}' is reserved for margins and totals; choose another label")
    return label


def _unique_labels(labels: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(labels)) != len(labels):
        raise ValueError("category labels must be unique")
    return labels


class CodeRef(_Model):
    """A code in a code system; a code ending in `*` matches every code it prefixes."""

    system: System
    code: Code


class CodeFilter(_Model):
    """Patients with at least one record in `domain` matching the code, and, when given,
    the value range (inclusive), the observation value code, and the date window
    (`after`: on or after, `before`: on or before)."""

    domain: Domain
    system: System
    code: Code
    min: Finite | None = None
    max: Finite | None = None
    value_code: CodeRef | None = None
    after: date | None = None
    before: date | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CodeFilter:
        if (self.min is not None or self.max is not None) and self.domain not in (
            "measurement",
            "observation",
        ):
            raise ValueError("min/max apply to measurement and observation filters only")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not exceed max")
        if self.value_code is not None and self.domain != "observation":
            raise ValueError("value_code applies to observation filters only")
        if self.after is not None and self.before is not None and self.after > self.before:
            raise ValueError("after must not be later than before")
        return self


class CohortFilter(CodeFilter):
    """A cohort filter; `present: false` keeps the patients with NO matching record."""

    present: bool = True


class AgeRange(_Model):
    """Completed years at the spec's reference date, both ends inclusive."""

    min: int = Field(default=0, ge=0, le=200)
    max: int = Field(default=200, ge=0, le=200)

    @model_validator(mode="after")
    def _ordered(self) -> AgeRange:
        if self.min > self.max:
            raise ValueError("min must not exceed max")
        return self


class Criteria(_Model):
    """Every filter holds (AND), sex is one of `sex`, age within `age`."""

    filters: tuple[CohortFilter, ...] = Field(default=(), max_length=MAX_FILTERS)
    sex: tuple[Sex, ...] | None = Field(default=None, min_length=1)
    age: AgeRange | None = None


class Cohort(Criteria):
    """Who is counted: the patients who meet the criteria, minus those who meet all the
    criteria of any `exclude` group (e.g. "except men aged 37")."""

    exclude: tuple[Criteria, ...] = Field(default=(), max_length=10)


# -- variables -----------------------------------------------------------------------


class _Linear(_Model):
    """Optional linear transform `(x - centre) / scale` of a numeric variable."""

    centre: Finite = 0.0
    scale: Finite = 1.0

    @field_validator("scale")
    @classmethod
    def _nonzero(cls, scale: float) -> float:
        if scale == 0:
            raise ValueError("scale must not be 0")
        return scale


class AgeVar(_Linear):
    """Completed years between birth date and the reference date (null without a birth
    date)."""

    kind: Literal["age"]


class MeasurementVar(_Linear):
    """The value of the patient's earliest or latest measurement with this code (null
    when they have none with a value)."""

    kind: Literal["measurement"]
    system: System
    code: Code
    pick: Pick = "earliest"


class SexVar(_Model):
    """Sex, one of `categories` (other values count as missing)."""

    kind: Literal["sex"]
    categories: tuple[Sex, ...] = Field(default=("female", "male"), min_length=1)

    @field_validator("categories")
    @classmethod
    def _unique(cls, categories: tuple[str, ...]) -> tuple[str, ...]:
        return _unique_labels(categories)


class Band(_Model):
    """An age band: `min` to `max` completed years, inclusive."""

    label: Label
    min: int = Field(ge=0, le=200)
    max: int = Field(ge=0, le=200)

    @field_validator("label")
    @classmethod
    def _not_reserved(cls, label: str) -> str:
        return _unreserved(label)


class AgeBandVar(_Model):
    """Age band at the reference date; ages outside every band count as missing."""

    kind: Literal["age_band"]
    bands: tuple[Band, ...] = Field(min_length=1, max_length=MAX_CATEGORIES)

    @model_validator(mode="after")
    def _disjoint(self) -> AgeBandVar:
        _unique_labels(self.categories)
        ordered = sorted(self.bands, key=lambda b: b.min)
        for band in ordered:
            if band.min > band.max:
                raise ValueError(f"band {band.label}: min must not exceed max")
        for left, right in itertools.pairwise(ordered):
            if right.min <= left.max:
                raise ValueError("age bands must not overlap")
        return self

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(b.label for b in self.bands)


class HasVar(CodeFilter):
    """1 when the patient has a record matching the filter, else 0."""

    kind: Literal["has"]


class Category(_Model):
    """A named category: the value codes that fall into it."""

    label: Label
    codes: tuple[CodeRef, ...] = Field(min_length=1, max_length=100)

    @field_validator("label")
    @classmethod
    def _not_reserved(cls, label: str) -> str:
        return _unreserved(label)


class ObservationCategoryVar(_Model):
    """The value code of the patient's earliest or latest observation with this code,
    mapped to the listed categories (unlisted values and no observation: missing)."""

    kind: Literal["observation_category"]
    system: System
    code: Code
    pick: Pick = "latest"
    categories: tuple[Category, ...] = Field(min_length=1, max_length=MAX_CATEGORIES)

    @model_validator(mode="after")
    def _distinct(self) -> ObservationCategoryVar:
        _unique_labels(self.labels)
        codes = [(ref.system, ref.code) for cat in self.categories for ref in cat.codes]
        if len(set(codes)) != len(codes):
            raise ValueError("a value code is listed in two categories")
        return self

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(c.label for c in self.categories)


class IsVar(_Model):
    """1 when the categorical variable `of` equals `category`, 0 when it has another
    value, missing when `of` is missing."""

    kind: Literal["is"]
    of: VariableName
    category: Label


Variable = Annotated[
    AgeVar | MeasurementVar | SexVar | AgeBandVar | HasVar | ObservationCategoryVar | IsVar,
    Field(discriminator="kind"),
]
NUMERIC_KINDS = frozenset({"age", "measurement", "has", "is"})
BINARY_KINDS = frozenset({"has", "is"})
CATEGORICAL_KINDS = frozenset({"sex", "age_band", "observation_category", "has", "is"})


def categories_of(variable: Variable) -> tuple[str, ...]:
    """The fixed categories of a categorical (or 0/1) variable, in spec order."""
    if isinstance(variable, SexVar):
        return tuple(variable.categories)
    if isinstance(variable, AgeBandVar):
        return variable.categories
    if isinstance(variable, ObservationCategoryVar):
        return variable.labels
    if isinstance(variable, HasVar | IsVar):
        return ("0", "1")
    raise SpecError(f"a {variable.kind} variable has no categories")


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


# -- the spec ------------------------------------------------------------------------


class QuerySpec(_Model):
    """A federated query. Build from untrusted input with `QuerySpec.parse`."""

    version: Literal[1] = 1
    title: str | None = Field(default=None, max_length=200)
    reference_date: date = DEFAULT_REFERENCE_DATE
    cohort: Cohort = Cohort()
    variables: dict[VariableName, Variable] = Field(default_factory=dict, max_length=MAX_VARIABLES)
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

    def data_fields(self) -> tuple[str, ...]:
        """The store fields the query reads (e.g. `person.sex`, `condition.code`),
        sorted: what a project's `variables` should cover."""
        fields = {"person.id"}
        for criteria in (self.cohort, *self.cohort.exclude):
            for flt in criteria.filters:
                fields |= _filter_fields(flt)
            if criteria.sex is not None:
                fields.add("person.sex")
            if criteria.age is not None:
                fields.add("person.birth_date")
        used = used_variables(self)
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

    @model_validator(mode="after")
    def _references(self) -> QuerySpec:
        ids = [s.id for s in self.statistics]
        if len(set(ids)) != len(ids):
            raise ValueError("statistic ids must be unique")
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
