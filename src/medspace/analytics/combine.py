"""Hub-side: turn the summed node vectors into a `QueryResult`.

A pure function of the sum (which is all the hub learns through secure aggregation),
the nodes' suppression flags and the minimum cell size. A combined cell is shown only
if no node suppressed it, its combined count is 0 or at least k, and complementary
suppression on the combined table leaves it visible (`disclosure.protect` again, with
the node-suppressed cells pre-marked). Every derived number (mean, sd, proportion,
quantile, bound) is computed from shown cells only, so it cannot leak a hidden one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist

from medspace.analytics.disclosure import protect
from medspace.analytics.errors import SpecError
from medspace.analytics.layout import TOTAL, Layout, bin_labels
from medspace.analytics.result import QueryResult, ResultRow, StatisticResult, SuppressedCell
from medspace.analytics.spec import (
    BoundsStat,
    CountStat,
    HistogramStat,
    LogisticStat,
    MeanStat,
    ProportionStat,
    QuantilesStat,
    QuerySpec,
    Statistic,
    SumStat,
    TableStat,
    VarianceStat,
)

AT_NODE = "suppressed-at-node"


def combine(
    spec: QuerySpec,
    layout: Layout,
    total: Sequence[float],
    suppressed: Mapping[str, Sequence[str | None]],
    min_cell_size: int,
    *,
    refusals: Mapping[str, Mapping[str, str]] | None = None,
) -> QueryResult:
    """The combined result. `total` is the element-wise sum of the contributing nodes'
    vectors, `suppressed` each contributing node's flags, `refusals` each node's
    per-statistic refusals. Raises `SpecError` when a vector does not fit the layout."""
    if len(total) != len(layout) or any(len(f) != len(layout) for f in suppressed.values()):
        raise SpecError("a vector's length does not match the query's layout")
    if min_cell_size < 1:
        raise SpecError("min_cell_size must be at least 1")
    per_cell: list[tuple[str, ...]] = [
        tuple(f"{node}: {flags[i]}" for node, flags in sorted(suppressed.items()) if flags[i])
        for i in range(len(layout))
    ]
    hidden = protect(
        layout,
        total,
        min_cell_size,
        already=[AT_NODE if why else None for why in per_cell],
    )
    reasons = [
        per_cell[i] if per_cell[i] else ((f"combined: {hidden[i]}",) if hidden[i] else ())
        for i in range(len(layout))
    ]
    refusals = refusals or {}
    view = _View(layout, total, hidden, reasons, min_cell_size)
    results = []
    for stat in spec.statistics:
        refused = {n: r[stat.id] for n, r in sorted(refusals.items()) if stat.id in r}
        if isinstance(stat, LogisticStat):
            results.append(
                StatisticResult(
                    id=stat.id,
                    kind=stat.kind,
                    label=stat.label,
                    refused=refused,
                    notes=("fitted in its own rounds: see the regression result",),
                )
            )
            continue
        results.append(_statistic(view, stat, refused))
    listed = tuple(
        SuppressedCell(statistic=c.statistic, labels=c.labels, part=c.part, reasons=reasons[i])
        for i, c in enumerate(layout.cells)
        if hidden[i] is not None
    )
    return QueryResult(
        spec_digest=spec.digest(),
        title=spec.title,
        min_cell_size=min_cell_size,
        nodes=tuple(sorted(suppressed)),
        statistics=tuple(results),
        suppressed=listed,
    )


class _View:
    """The combined cells of one statistic, by (labels, part), with what may be shown."""

    def __init__(
        self,
        layout: Layout,
        total: Sequence[float],
        hidden: Sequence[str | None],
        reasons: Sequence[tuple[str, ...]],
        k: int,
    ) -> None:
        self.k = k
        self._cells: dict[tuple[str, tuple[str, ...], str], int] = {
            (c.statistic, c.labels, c.part): i for i, c in enumerate(layout.cells)
        }
        self._layout = layout
        self._total = total
        self._hidden = hidden
        self._reasons = reasons

    def groups(self, statistic: str) -> list[tuple[str, ...]]:
        seen: dict[tuple[str, ...], None] = {}
        for c in self._layout.cells:
            if c.statistic == statistic:
                seen.setdefault(c.labels, None)
        return list(seen)

    def get(self, statistic: str, labels: tuple[str, ...], part: str) -> float | None:
        """The shown value, or None when hidden."""
        i = self._cells[(statistic, labels, part)]
        return None if self._hidden[i] is not None else float(self._total[i])

    def raw(self, statistic: str, labels: tuple[str, ...], part: str) -> float:
        return float(self._total[self._cells[(statistic, labels, part)]])

    def why(self, statistic: str, labels: tuple[str, ...], *parts: str) -> tuple[str, ...]:
        out: list[str] = []
        for part in parts:
            for reason in self._reasons[self._cells[(statistic, labels, part)]]:
                if reason not in out:
                    out.append(reason)
        return tuple(out)


def _statistic(view: _View, stat: Statistic, refused: dict[str, str]) -> StatisticResult:
    hide = f"<{view.k}"
    rows: list[ResultRow] = []
    notes: list[str] = []
    columns: tuple[str, ...] = ()
    if isinstance(stat, CountStat | SumStat | MeanStat | VarianceStat):
        columns = stat.by
        for labels in view.groups(stat.id):
            rows.append(_moments(view, stat, labels, hide))
    elif isinstance(stat, ProportionStat):
        columns = stat.by
        for labels in view.groups(stat.id):
            rows.append(_proportion(view, stat, labels, hide))
        notes.append(f"Wilson score interval at {stat.confidence:.0%} confidence")
    elif isinstance(stat, HistogramStat | TableStat):
        columns = (stat.variable,) if isinstance(stat, HistogramStat) else stat.variables
        for labels in view.groups(stat.id):
            part = _count_part(stat, labels)
            n = view.get(stat.id, labels, part)
            rows.append(_row(labels, {"n": n}, hide, view.why(stat.id, labels, part)))
    elif isinstance(stat, QuantilesStat):
        columns = ("probability",)
        rows, more = _quantiles(view, stat, hide)
        notes.extend(more)
    elif isinstance(stat, BoundsStat):
        rows, more = _bounds(view, stat)
        notes.extend(more)
    if refused:
        notes.append("nodes that refused contribute nothing to this statistic")
    return StatisticResult(
        id=stat.id,
        kind=stat.kind,
        label=stat.label,
        columns=columns,
        rows=tuple(rows),
        notes=tuple(notes),
        refused=refused,
    )


def _count_part(stat: HistogramStat | TableStat, labels: tuple[str, ...]) -> str:
    if isinstance(stat, HistogramStat):
        return "n" if labels == (TOTAL,) else "bin"
    if len(labels) == 1:
        return "n" if labels == (TOTAL,) else "cell"
    if labels == ("all", "all"):
        return "n"
    return "margin" if "all" in labels else "cell"


def _moments(
    view: _View,
    stat: CountStat | SumStat | MeanStat | VarianceStat,
    labels: tuple[str, ...],
    hide: str,
) -> ResultRow:
    n = view.get(stat.id, labels, "n")
    values: dict[str, float | None] = {"n": n}
    parts = ["n"]
    if not isinstance(stat, CountStat):
        parts.append("sum")
        total = view.get(stat.id, labels, "sum")
        if isinstance(stat, SumStat):
            values["sum"] = total
        else:
            values["mean"] = total / n if n and total is not None else None
        if isinstance(stat, VarianceStat):
            parts.append("sumsq")
            squares = view.get(stat.id, labels, "sumsq")
            variance = None
            if n is not None and n >= 2 and total is not None and squares is not None:
                variance = max(0.0, (squares - total * total / n) / (n - 1))
            values["variance"] = variance
            values["sd"] = math.sqrt(variance) if variance is not None else None
    return _row(labels, values, hide, view.why(stat.id, labels, *parts))


def wilson_interval(successes: float, n: float, confidence: float) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion."""
    if n <= 0:
        raise ValueError("n must be positive")
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _proportion(view: _View, stat: ProportionStat, labels: tuple[str, ...], hide: str) -> ResultRow:
    n = view.get(stat.id, labels, "n")
    yes = view.get(stat.id, labels, "yes")
    values: dict[str, float | None] = {
        "n": n,
        "yes": yes,
        "proportion": None,
        "ci_low": None,
        "ci_high": None,
    }
    if n and yes is not None:
        low, high = wilson_interval(yes, n, stat.confidence)
        values.update(proportion=yes / n, ci_low=low, ci_high=high)
    return _row(labels, values, hide, view.why(stat.id, labels, "yes", "no", "n"))


def _quantiles(view: _View, stat: QuantilesStat, hide: str) -> tuple[list[ResultRow], list[str]]:
    labels = bin_labels(stat.edges)
    n = view.get(stat.id, (TOTAL,), "n")
    counts = [view.get(stat.id, (label,), "bin") for label in labels]
    width = max(b - a for a, b in zip(stat.edges, stat.edges[1:], strict=False))
    notes = [
        f"quantiles are interpolated within bins of the histogram: each is within one bin "
        f"width (at most {width:g}) of the true value"
    ]
    rows = []
    for p in stat.probabilities:
        name = f"p{100 * p:g}"
        if not n:
            why = view.why(stat.id, (TOTAL,), "n") or ("no patients",)
            rows.append(_row((name,), {"quantile": None}, hide, why))
            continue
        hidden_mass = n - sum(c for c in counts if c is not None)
        low = _interpolate(stat.edges, _fill(counts, hidden_mass, first=True), p * n)
        high = _interpolate(stat.edges, _fill(counts, hidden_mass, first=False), p * n)
        if low is None or high is None:
            if low is None and high is None:
                below = _cumulative_below(counts, hidden_mass, p * n)
                shown = f"< {stat.edges[0]:g}" if below else f">= {stat.edges[-1]:g}"
            else:
                shown = "not determined (suppressed bins at an edge)"
            reason = "the quantile falls outside the histogram's edges"
            rows.append(
                ResultRow(
                    labels=(name,),
                    values={"quantile": None},
                    display={"quantile": shown},
                    reasons=(reason,),
                )
            )
            continue
        error = (high - low) / 2 + width
        value = (low + high) / 2
        rows.append(
            ResultRow(
                labels=(name,),
                values={"quantile": value, "error": error},
                display={"quantile": f"{value:.4g}", "error": f"±{error:.3g}"},
                reasons=(("suppressed bins widen the error",) if hidden_mass else ()),
            )
        )
    return rows, notes


def _cumulative_below(counts: list[float | None], hidden_mass: float, rank: float) -> bool:
    """Whether the rank may fall in the bin below the first edge."""
    first = counts[0]
    return (first if first is not None else hidden_mass) >= rank


def _fill(counts: list[float | None], mass: float, *, first: bool) -> list[float]:
    """Counts with the mass of hidden bins put all into the first (or last) hidden bin."""
    hidden = [i for i, c in enumerate(counts) if c is None]
    filled = [c if c is not None else 0.0 for c in counts]
    if hidden:
        filled[hidden[0] if first else hidden[-1]] = mass
    return filled


def _interpolate(edges: tuple[float, ...], counts: list[float], rank: float) -> float | None:
    """Linear interpolation of the value of `rank` within the bin that holds it; None
    when it falls below the first or above the last edge."""
    cumulative = 0.0
    for b, count in enumerate(counts):
        if count > 0 and cumulative + count >= rank:
            if b == 0 or b == len(counts) - 1:
                return None
            lo, hi = edges[b - 1], edges[b]
            return lo + (rank - cumulative) / count * (hi - lo)
        cumulative += count
    return None


def _bounds(view: _View, stat: BoundsStat) -> tuple[list[ResultRow], list[str]]:
    labels = bin_labels(stat.edges)
    occupied = [view.raw(stat.id, (label,), "occupied") > 0 for label in labels]
    notes = [
        "bounds are the outer edges of the lowest and highest bins that hold at least k "
        "patients at some node: a few patients in sparser bins beyond them are not "
        "covered; coarser edges cover more"
    ]
    if not any(occupied):
        reason = "no bin holds k patients at any node: choose coarser edges"
        row = ResultRow(
            labels=(),
            values={"lower": None, "upper": None},
            display={"lower": "n/a", "upper": "n/a"},
            suppressed=True,
            reasons=(reason,),
        )
        return [row], notes
    first = occupied.index(True)
    last = len(occupied) - 1 - occupied[::-1].index(True)
    lower = None if first == 0 else stat.edges[first - 1]
    upper = None if last == len(labels) - 1 else stat.edges[last]
    display = {
        "lower": f"< {stat.edges[0]:g}" if lower is None else f"{lower:g}",
        "upper": f">= {stat.edges[-1]:g}" if upper is None else f"{upper:g}",
    }
    return [ResultRow(labels=(), values={"lower": lower, "upper": upper}, display=display)], notes


def _row(
    labels: tuple[str, ...],
    values: dict[str, float | None],
    hide: str,
    reasons: tuple[str, ...],
) -> ResultRow:
    display = {
        name: (hide if reasons else "n/a") if v is None else _format(name, v)
        for name, v in values.items()
    }
    return ResultRow(
        labels=labels,
        values=values,
        display=display,
        suppressed=bool(reasons),
        reasons=reasons,
    )


def _format(name: str, value: float) -> str:
    if name in ("n", "yes"):
        return f"{value:.0f}"
    if name in ("proportion", "ci_low", "ci_high"):
        return f"{100 * value:.1f} %"
    return f"{value:.4g}"
