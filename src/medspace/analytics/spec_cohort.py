"""The cohort part of a query spec: who is counted (filters, sex, age, exclusions)."""

from __future__ import annotations

from datetime import date

from pydantic import Field, model_validator

from medspace.analytics._spec_base import (
    MAX_FILTERS,
    Code,
    Domain,
    Finite,
    System,
    _Model,
)
from medspace.model.records import Sex


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
