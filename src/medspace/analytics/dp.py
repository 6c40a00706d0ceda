"""Differential privacy for combined results: OpenDP Laplace noise on what the hub releases.

Where the noise goes. Nodes add nothing: the hub adds noise once, to the securely
aggregated total vector (one value per layout cell), before `combine` turns it into means,
proportions, quantiles and tables. Everything derived from the noisy vector is
post-processing, so it costs no further privacy (Dwork & Roth 2014, Prop. 2.1).

Neighbouring datasets: add or remove one patient record at one node ("unbounded" DP).
A patient is in at most one cell of each (statistic, part) group: one histogram bin, one
table cell, one stratum's n. So the L1 sensitivity of a group is one patient's largest
contribution to one cell: 1 for counts and 0/1 variables, max(|lower|, |upper|) for a sum
of a variable bounded by [lower, upper], max(lower², upper²) for a sum of squares. The
only other bounded variable is age, by the cohort's age range (the node keeps only
patients in it, in SQL); a measurement has no bounds in the spec yet, so its sum is
refused. A person treated at several hospitals is several records: the hub releases
with `contributions` = 1 (it has no setting for more), so DP protects a record, not a
person seen at several hospitals.

Mechanisms (OpenDP 0.16, `make_laplace`): counts get discrete Laplace noise on integers
(Ghosh, Roughgarden & Sundararajan 2012; Canonne, Kamath & Steinke 2020), so counts stay
whole numbers; sums get OpenDP's discretised Laplace on floats, which is safe against the
floating-point attacks on textbook Laplace (Mironov 2012). The scale of each group is
checked with OpenDP's own privacy map, never just computed by hand.

Composition: the query's epsilon is split equally over its statistics, and each
statistic's share equally over its noised groups (a mean has two: n and sum). Basic
sequential composition says the query spends the sum, which is at most the stated epsilon
(every share is rounded down). Logistic regression is refused under DP: an iterated
Newton fit would need a noisy gradient and Hessian every round, with accounting we do not
offer yet.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Context, Decimal
from typing import Any

import opendp.prelude as dp
from pydantic import BaseModel, ConfigDict

from medspace.analytics.budget import EpsilonError, epsilon_text, to_micro
from medspace.analytics.layout import ALL, Layout, layout
from medspace.analytics.spec import BINARY_KINDS, QuerySpec
from medspace.errors import MedSpaceError, UsageError

dp.enable_features("contrib")

DEFAULT_SHARE = 10
"""A query that states no epsilon spends 1/DEFAULT_SHARE of the project's total."""

_FLOOR = Context(prec=28, rounding=ROUND_FLOOR)
_MICRO = Decimal("0.000001")
_ALPHA = 0.05

COUNT = "count"
SUM = "sum"
SUMSQ = "sumsq"


class DPError(MedSpaceError):
    """Base of the differential privacy errors."""


class DPUnsupported(DPError, UsageError):
    """A statistic that cannot be released under differential privacy (yet)."""


@dataclass(frozen=True)
class NoiseGroup:
    """Cells of the total vector noised together: one statistic's part (e.g. every
    histogram bin, or every stratum's sum). `kind` is COUNT, SUM or SUMSQ; `bound` is the
    largest |value| one patient can add to one cell of a SUM (for SUMSQ, of the variable,
    which is squared here); counts ignore it."""

    statistic: str
    part: str
    cells: tuple[int, ...]
    kind: str
    bound: float = 1.0

    def sensitivity(self, contributions: int) -> float:
        """L1 sensitivity of the group when one person may appear `contributions` times."""
        if self.kind == COUNT:
            return float(contributions)
        if not math.isfinite(self.bound) or self.bound < 0:
            raise DPUnsupported(
                f"statistic {self.statistic} has no finite bound on one patient's value, so "
                "it cannot be released under DP; ask for a histogram instead"
            )
        per_record = self.bound if self.kind == SUM else self.bound * self.bound
        return per_record * contributions


class GroupRelease(BaseModel):
    """How one group was noised: for the report and for anyone checking the maths."""

    model_config = ConfigDict(frozen=True)

    statistic: str
    part: str
    cells: int
    mechanism: str
    epsilon: Decimal
    sensitivity: float
    scale: float
    accuracy_95: float
    """Half-width that each noisy cell is within with 95 % probability."""


class DPRelease(BaseModel):
    """The DP parameters of one released result (JSON-able; no patient data)."""

    model_config = ConfigDict(frozen=True)

    epsilon: Decimal
    neighbouring: str = "add or remove one patient record"
    contributions: int = 1
    library: str = "OpenDP 0.16"
    groups: tuple[GroupRelease, ...]

    def ledger_body(self) -> dict[str, str]:
        """Decimal strings for the ledger entry of the release (no floats, no data)."""
        return {
            "dp_epsilon": epsilon_text(self.epsilon),
            "dp_mechanism": "laplace",
            "dp_groups": str(len(self.groups)),
            "dp_contributions": str(self.contributions),
        }


UNSUPPORTED_UNDER_DP = {
    "logistic": "logistic regression is not released under differential privacy; run it in "
    "a project without DP, or ask for proportions by covariate instead",
    "bounds": "bounds are not released under differential privacy (noise hides which "
    "extreme bins are occupied); ask for quantiles or a histogram instead",
}


def check_supported(spec: QuerySpec) -> None:
    """Raise `DPUnsupported` (naming the statistic and what to ask for instead) when the
    spec has a statistic that cannot be released under DP. Call before sending the query
    to nodes, so nothing is computed in vain."""
    noise_plan(spec, layout(spec))


def noise_plan(spec: QuerySpec, cells: Layout) -> list[NoiseGroup]:
    """The noise groups of a spec's layout: every cell is in exactly one group.

    Grouping is by statistic, part and, for table margins, the axis summed over, so that
    one patient is in at most one cell of each group (a patient is in one row margin AND
    one column margin, hence two groups). Sums need a bound on each patient's value:
    0/1 variables have 1, age the cohort's age range; other numeric variables have none."""
    for stat in spec.statistics:
        reason = UNSUPPORTED_UNDER_DP.get(stat.kind)
        if reason is not None:
            raise DPUnsupported(f"statistic {stat.id}: {reason}")
    members: dict[tuple[str, str, tuple[int, ...]], list[int]] = {}
    for index, cell in enumerate(cells):
        axes = tuple(i for i, label in enumerate(cell.labels) if label == ALL)
        # A patient counted by a proportion is either a yes or a no, never both.
        part = "yes/no" if cell.part in ("yes", "no") else cell.part
        members.setdefault((cell.statistic, part, axes), []).append(index)
    groups = []
    for (statistic, part, axes), indices in members.items():
        name = part if not axes or part == "n" else f"{part} over axis {axes[0] + 1}"
        if part in ("sum", "sumsq"):
            kind, bound = (SUM if part == "sum" else SUMSQ), _value_bound(spec, statistic)
        else:
            kind, bound = COUNT, 1.0
        groups.append(NoiseGroup(statistic, name, tuple(indices), kind, bound))
    return groups


def release(
    spec: QuerySpec,
    cells: Layout,
    total: Sequence[float],
    epsilon: Decimal,
    *,
    contributions: int = 1,
) -> tuple[list[float], DPRelease]:
    """Noise the summed vector of `spec` for release; pass the result to `combine`."""
    if len(total) != len(cells):
        raise UsageError("the summed vector does not match the spec's layout")
    noisy, info = privatize(total, noise_plan(spec, cells), epsilon, contributions=contributions)
    return _consistent(cells, noisy), info


def _consistent(cells: Layout, noisy: list[float]) -> list[float]:
    """Post-processing (free under DP): a proportion's noisy yes and no counts are capped
    at its noisy n, so no share exceeds 100 % (yes and n are noised independently)."""
    where = {(c.statistic, c.labels, c.part): i for i, c in enumerate(cells)}
    for (statistic, labels, part), index in where.items():
        if part in ("yes", "no"):
            total = where.get((statistic, labels, "n"))
            if total is not None:
                noisy[index] = min(noisy[index], noisy[total])
    return noisy


def _value_bound(spec: QuerySpec, statistic_id: str) -> float:
    """The largest |value| one patient adds to a sum of the statistic's variable."""
    stat = spec.statistic(statistic_id)
    name = getattr(stat, "variable", None)
    variable = spec.variables.get(name) if isinstance(name, str) else None
    if variable is None:  # pragma: no cover - the spec validates references
        raise DPUnsupported(f"statistic {statistic_id} has no variable to bound")
    if variable.kind in BINARY_KINDS:
        return 1.0
    clamp = getattr(variable, "clamp", None)
    low, high = getattr(clamp, "min", None), getattr(clamp, "max", None)
    if clamp is None and variable.kind == "age" and spec.cohort.age is not None:
        # The cohort keeps only patients whose age at the reference date is in range.
        low, high = spec.cohort.age.min, spec.cohort.age.max
    if not isinstance(low, int | float) or not isinstance(high, int | float):
        raise DPUnsupported(
            f"statistic {statistic_id}: variable {name} has no clamp bounds (the spec cannot "
            "give a measurement bounds yet), so one patient's share of its sum is "
            "unbounded under DP; ask for a histogram of it instead"
        )
    centre = float(getattr(variable, "centre", 0.0))
    scale = float(getattr(variable, "scale", 1.0))
    return max(abs((float(low) - centre) / scale), abs((float(high) - centre) / scale))


def query_epsilon(stated: Decimal | None, total: Decimal) -> Decimal:
    """The epsilon a query spends: the stated one, or 1/DEFAULT_SHARE of the project's
    total rounded down to 10^-6. Raises `EpsilonError` when it is not a valid amount."""
    if stated is not None:
        to_micro(stated)
        return stated
    to_micro(total, what="the project's epsilon")
    share = (total / DEFAULT_SHARE).quantize(_MICRO, rounding=ROUND_FLOOR)
    if share <= 0:
        raise EpsilonError("the project's epsilon is too small to share; state the query's")
    return share.normalize()


def split_epsilon(epsilon: Decimal, groups: Sequence[NoiseGroup]) -> list[Decimal]:
    """Each group's share: equal per statistic, then equal per group within it, rounded
    down, so the shares never add up to more than `epsilon`."""
    by_statistic: dict[str, int] = {}
    for group in groups:
        by_statistic[group.statistic] = by_statistic.get(group.statistic, 0) + 1
    if not by_statistic:
        return []
    per_statistic = _FLOOR.divide(epsilon, Decimal(len(by_statistic)))
    return [_FLOOR.divide(per_statistic, Decimal(by_statistic[g.statistic])) for g in groups]


def privatize(
    total: Sequence[float],
    groups: Sequence[NoiseGroup],
    epsilon: Decimal,
    *,
    contributions: int = 1,
) -> tuple[list[float], DPRelease]:
    """Add OpenDP noise to every grouped cell of `total`; return the noisy vector and
    what was done. Cells in no group are returned as they are (the caller must group
    every cell it releases). Counts come back as whole numbers, never below 0."""
    to_micro(epsilon)
    if contributions < 1:
        raise UsageError("contributions must be at least 1")
    seen: set[int] = set()
    for group in groups:
        for index in group.cells:
            if index in seen or not 0 <= index < len(total):
                raise UsageError(
                    f"statistic {group.statistic}: cell {index} is outside the result or "
                    "in two noise groups"
                )
            seen.add(index)
    noisy = [float(value) for value in total]
    released: list[GroupRelease] = []
    for group, share in zip(groups, split_epsilon(epsilon, groups), strict=True):
        if not group.cells:
            continue
        values = [noisy[i] for i in group.cells]
        out, release = _noise_group(group, values, share, contributions)
        for index, value in zip(group.cells, out, strict=True):
            noisy[index] = value
        released.append(release)
    return noisy, DPRelease(epsilon=epsilon, contributions=contributions, groups=tuple(released))


def _noise_group(
    group: NoiseGroup, values: list[float], share: Decimal, contributions: int
) -> tuple[list[float], GroupRelease]:
    epsilon = _float_at_most(share)
    if epsilon <= 0:
        raise EpsilonError(
            f"statistic {group.statistic} gets no epsilon after splitting; ask for a larger "
            "epsilon or fewer statistics"
        )
    sensitivity = group.sensitivity(contributions)
    if group.kind == COUNT:
        d_in: Any = int(sensitivity)
        counts = [_whole(value, group.statistic) for value in values]
        measurement, scale = _calibrated(int, d_in, epsilon)
        out = [float(max(v, 0)) for v in measurement(counts)]
        accuracy = dp.discrete_laplacian_scale_to_accuracy(scale, _ALPHA)
        mechanism = "discrete Laplace"
    else:
        d_in = float(sensitivity)
        measurement, scale = _calibrated(float, d_in, epsilon)
        out = [float(v) for v in measurement([float(v) for v in values])]
        if group.kind == SUMSQ:
            out = [max(v, 0.0) for v in out]
        accuracy = dp.laplacian_scale_to_accuracy(scale, _ALPHA)
        mechanism = "Laplace (discretised floats)"
    return out, GroupRelease(
        statistic=group.statistic,
        part=group.part,
        cells=len(values),
        mechanism=mechanism,
        epsilon=share,
        sensitivity=float(sensitivity),
        scale=scale,
        accuracy_95=float(accuracy),
    )


@functools.lru_cache(maxsize=2)
def _space(integer: bool) -> tuple[Any, Any]:
    if integer:
        return dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int)
    return dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l1_distance(T=float)


@functools.lru_cache(maxsize=256)
def _calibrated(kind: type, d_in: Any, epsilon: float) -> tuple[Any, float]:
    """The Laplace measurement for sensitivity `d_in` whose OpenDP privacy map is at most
    `epsilon`, with the smallest scale found by widening sensitivity/epsilon. Cached:
    measurements are immutable, and repeated queries reuse their epsilon shares."""
    space = _space(kind is int)
    scale = float(d_in) / epsilon if d_in else 0.0
    for _ in range(64):
        measurement = dp.m.make_laplace(*space, scale=scale)
        if measurement.map(d_in) <= epsilon:
            return measurement, scale
        scale = math.nextafter(scale, math.inf) * (1 + 1e-12)
    raise DPError("could not calibrate the noise scale; report this as a bug")  # pragma: no cover


def _float_at_most(value: Decimal) -> float:
    """The largest float not above `value` (float() alone may round up)."""
    result = float(value)
    while Decimal(result) > value:
        result = math.nextafter(result, -math.inf)
    return result


def _whole(value: float, statistic: str) -> int:
    if not math.isfinite(value) or value != round(value):
        raise UsageError(f"statistic {statistic}: a count cell holds a non-integer")
    return round(value)
