"""The variables (features) of a query spec: age, sex, bands, values, indicators."""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from medspace.analytics._spec_base import (
    MAX_CATEGORIES,
    Code,
    Finite,
    Label,
    Pick,
    System,
    VariableName,
    _Model,
    _unique_labels,
    _unreserved,
)
from medspace.analytics.errors import SpecError
from medspace.analytics.spec_cohort import CodeFilter, CodeRef
from medspace.model.records import Sex

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
