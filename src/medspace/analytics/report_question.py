"""The question a query spec asks, in plain words for the report's reader.

A clinician reading a report should not have to read JSON: "Patients with a condition
ICD-10 C22.0 (or any code under it) ... Response rate: share with responded = yes, by
age band and sex". The words are built from the spec alone (codes, labels, bands), never
from data.
"""

from __future__ import annotations

from medspace.analytics.spec import (
    AgeBandVar,
    AgeVar,
    CohortFilter,
    HasVar,
    IsVar,
    MeasurementVar,
    ObservationCategoryVar,
    QuerySpec,
    SexVar,
    Statistic,
)

_DOMAIN_WORDS = {
    "condition": "a condition",
    "drug": "a drug",
    "measurement": "a measurement",
    "observation": "an observation",
    "procedure": "a procedure",
}


def describe_question(spec: QuerySpec) -> list[str]:
    """Sentences saying who was counted and what was computed."""
    lines = [describe_cohort(spec)]
    for stat in spec.statistics:
        lines.append(f"{stat.label or stat.id}: {describe_statistic(spec, stat)}.")
    return lines


def describe_cohort(spec: QuerySpec) -> str:
    """One sentence for the cohort: every filter (AND), sex and age."""
    cohort = spec.cohort
    parts = [_filter_words(f) for f in cohort.filters]
    if cohort.sex is not None:
        parts.append("of sex " + " or ".join(str(s) for s in cohort.sex))
    if cohort.age is not None:
        parts.append(
            f"aged {cohort.age.min} to {cohort.age.max} years on {spec.reference_date.isoformat()}"
        )
    if not parts:
        return "Cohort: every patient at each contributing hospital."
    return "Cohort: patients " + "; and ".join(parts) + "."


def describe_variable(spec: QuerySpec, name: str) -> str:
    """A variable in words, e.g. 'age (years on 2024-01-01)'."""
    var = spec.variables.get(name)
    if var is None:
        return name
    if isinstance(var, AgeVar):
        words = f"age (years on {spec.reference_date.isoformat()})"
        return _linear(words, var.centre, var.scale)
    if isinstance(var, MeasurementVar):
        words = f"{var.pick} {var.system} {_code(var.code)} value"
        return _linear(f"{name} ({words})", var.centre, var.scale)
    if isinstance(var, SexVar):
        return "sex"
    if isinstance(var, AgeBandVar):
        bands = ", ".join(f"{b.label} = {b.min}-{b.max}" for b in var.bands)
        return f"age band ({bands})"
    if isinstance(var, HasVar):
        has = _filter_words(var).removeprefix("with ")
        return f"{name} (1 if the patient has {has}, else 0)"
    if isinstance(var, ObservationCategoryVar):
        labels = ", ".join(var.labels)
        return f"{name} ({var.pick} {var.system} {_code(var.code)} result: {labels})"
    if isinstance(var, IsVar):
        return f"{name} (1 if {var.of} is {var.category}, else 0)"
    return name  # pragma: no cover - every variable kind is handled above


def describe_statistic(spec: QuerySpec, stat: Statistic) -> str:
    """What one statistic computes, in words."""
    by = getattr(stat, "by", ())
    grouped = (" by " + " and ".join(describe_variable(spec, n) for n in by)) if by else ""
    kind = stat.kind
    variable = getattr(stat, "variable", None)
    words = describe_variable(spec, variable) if isinstance(variable, str) else ""
    if kind == "count":
        return f"number of patients{grouped}"
    if kind in ("sum", "mean"):
        return f"{kind} of {words}{grouped}"
    if kind == "variance":
        return f"mean, variance and standard deviation of {words}{grouped}"
    if kind in ("histogram", "quantiles", "bounds"):
        edges = ", ".join(f"{e:g}" for e in getattr(stat, "edges", ()))
        what = {
            "histogram": "number of patients per bin of",
            "quantiles": "quantiles (read from bins) of",
            "bounds": "lowest and highest bin edges occupied by",
        }[kind]
        return f"{what} {words}, bin edges {edges}"
    if kind == "table":
        names = getattr(stat, "variables", ())
        return "table of patients by " + " and ".join(describe_variable(spec, n) for n in names)
    if kind == "proportion":
        level = round(float(getattr(stat, "confidence", 0.95)) * 100)
        return f"share of patients with {words} = 1{grouped}, with a {level} % Wilson interval"
    if kind == "logistic":
        outcome = describe_variable(spec, str(getattr(stat, "outcome", "")))
        covariates = ", ".join(describe_variable(spec, c) for c in getattr(stat, "covariates", ()))
        return f"logistic regression of {outcome} on {covariates}"
    return kind  # pragma: no cover - every statistic kind is handled above


def _filter_words(flt: CohortFilter | HasVar) -> str:
    present = getattr(flt, "present", True)
    words = f"{'with' if present else 'without'} {_DOMAIN_WORDS[flt.domain]} {flt.system} "
    words += _code(flt.code)
    if flt.min is not None and flt.max is not None:
        words += f" valued {flt.min:g} to {flt.max:g}"
    elif flt.min is not None:
        words += f" valued at least {flt.min:g}"
    elif flt.max is not None:
        words += f" valued at most {flt.max:g}"
    if flt.value_code is not None:
        words += f" with result {flt.value_code.system} {flt.value_code.code}"
    if flt.after is not None:
        words += f" on or after {flt.after.isoformat()}"
    if flt.before is not None:
        words += f" on or before {flt.before.isoformat()}"
    return words


def _code(code: str) -> str:
    return f"{code[:-1]} (or any code under it)" if code.endswith("*") else code


def _linear(words: str, centre: float, scale: float) -> str:
    if centre == 0 and scale == 1:
        return words
    return f"({words} - {centre:g}) / {scale:g}"
