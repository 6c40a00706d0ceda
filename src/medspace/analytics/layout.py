"""The cells each node contributes, computed from the spec alone.

Secure aggregation adds the nodes' vectors element by element, so every node must put
the same quantity at the same position. `layout(spec)` fixes that order from the spec,
never from data: a node with no patient in a cell still sends the cell (as 0).

Each `Cell` says which statistic it belongs to, its labels (e.g. ("40-59", "male")), its
part (`n`, `sum`, `sumsq`, `bin`, `cell`, `margin`, `yes`, `no`, `occupied`), whether it
is a *count cell* (a number of patients, subject to the minimum cell size), and for
count cells its `population`: the conditions that define the patients it counts, e.g.
(("age_band", "40-59"), ("sex", "male")). Disclosure control derives from populations
which cells add up to which (margins, totals, the same group counted by two statistics),
so that no suppressed cell can be recomputed from the others.

Logistic regression is not in the layout: it runs in its own rounds
(`medspace.analytics.regression`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from medspace.analytics.spec import (
    BoundsStat,
    CountStat,
    HistogramStat,
    IsVar,
    MeanStat,
    ProportionStat,
    QuantilesStat,
    QuerySpec,
    Statistic,
    SumStat,
    TableStat,
    VarianceStat,
    categories_of,
)

MAX_CELLS = 100_000
ALL = "all"
TOTAL = "total"

Condition = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Cell:
    """One position of a node's vector."""

    statistic: str
    labels: tuple[str, ...]
    part: str
    count: bool
    population: tuple[Condition, ...] = ()
    complete: bool = True
    """Whether the cell counts *every* patient of its population. The n of a mean counts
    only those with a value, a table's margin only those with a value of the other
    variable: a 0 there does not say that nobody is in the population."""


@dataclass(frozen=True, slots=True)
class Layout:
    """The ordered cells of a spec's non-regression statistics.

    `domains` maps each condition variable of a population to its categories (used to
    tell when a set of cells partitions a population); `indicators` maps each `is`
    variable to the (categorical variable, category) it indicates, so that cells
    counted through the indicator are linked to cells counted through its variable.
    """

    cells: tuple[Cell, ...]
    domains: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    indicators: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.cells)

    def __iter__(self) -> Iterator[Cell]:
        return iter(self.cells)

    def positions(self, statistic_id: str) -> list[int]:
        """Indices of the statistic's cells, in layout order."""
        return [i for i, c in enumerate(self.cells) if c.statistic == statistic_id]


def bin_labels(edges: tuple[float, ...]) -> tuple[str, ...]:
    """Labels of the bins a fixed-edge histogram has: below, [e_i, e_i+1), and above."""
    inner = [f"[{_num(a)}, {_num(b)})" for a, b in itertools.pairwise(edges)]
    return (f"< {_num(edges[0])}", *inner, f">= {_num(edges[-1])}")


def binned_condition(variable: str, edges: tuple[float, ...]) -> str:
    """The condition variable naming a variable cut at these edges."""
    return f"{variable}|" + ",".join(repr(e) for e in edges)


def layout(spec: QuerySpec) -> Layout:
    """The cells every node contributes for `spec`, in a fixed order (no data read)."""
    cells: list[Cell] = []
    domains: dict[str, tuple[str, ...]] = {}
    indicators: dict[str, tuple[str, str]] = {}
    for name, var in spec.variables.items():
        if var.kind in ("sex", "age_band", "observation_category", "has", "is"):
            domains[name] = categories_of(var)
        if isinstance(var, IsVar):
            indicators[name] = (var.of, var.category)
    for stat in spec.statistics:
        cells.extend(_cells(spec, stat, domains))
        if len(cells) > MAX_CELLS:
            break
    return Layout(tuple(cells), domains, indicators)


def _groups(spec: QuerySpec, by: tuple[str, ...]) -> list[tuple[Condition, ...]]:
    axes = [[(name, c) for c in categories_of(spec.variables[name])] for name in by]
    return [tuple(sorted(combo)) for combo in itertools.product(*axes)]


def _labels(population: tuple[Condition, ...], by: tuple[str, ...]) -> tuple[str, ...]:
    found = dict(population)
    return tuple(found[name] for name in by)


def _cells(spec: QuerySpec, stat: Statistic, domains: dict[str, tuple[str, ...]]) -> list[Cell]:
    sid = stat.id
    if isinstance(stat, CountStat | SumStat | MeanStat | VarianceStat | ProportionStat):
        parts: tuple[str, ...] = {
            "count": ("n",),
            "sum": ("n", "sum"),
            "mean": ("n", "sum"),
            "variance": ("n", "sum", "sumsq"),
            "proportion": ("yes", "no", "n"),
        }[stat.kind]
        out = []
        for pop in _groups(spec, stat.by):
            labels = _labels(pop, stat.by)
            for part in parts:
                if part in ("sum", "sumsq"):
                    out.append(Cell(sid, labels, part, count=False))
                elif part in ("yes", "no"):
                    assert isinstance(stat, ProportionStat)
                    cond = (stat.variable, "1" if part == "yes" else "0")
                    out.append(Cell(sid, labels, part, True, tuple(sorted((*pop, cond)))))
                else:  # the n of a sum, mean, variance or proportion: those with a value
                    out.append(Cell(sid, labels, part, True, pop, complete=stat.kind == "count"))
        return out
    if isinstance(stat, HistogramStat | QuantilesStat | BoundsStat):
        cond_var = binned_condition(stat.variable, stat.edges)
        labels = bin_labels(stat.edges)
        domains[cond_var] = labels
        if isinstance(stat, BoundsStat):
            return [Cell(sid, (label,), "occupied", count=False) for label in labels]
        out = [Cell(sid, (label,), "bin", True, ((cond_var, label),)) for label in labels]
        out.append(Cell(sid, (TOTAL,), "n", True, (), complete=False))
        return out
    if isinstance(stat, TableStat):
        names = stat.variables
        cats = [categories_of(spec.variables[n]) for n in names]
        if len(names) == 1:
            out = [Cell(sid, (c,), "cell", True, ((names[0], c),)) for c in cats[0]]
            out.append(Cell(sid, (TOTAL,), "n", True, (), complete=False))
            return out
        (a, b), (ca, cb) = names, cats
        out = [
            Cell(sid, (x, y), "cell", True, tuple(sorted(((a, x), (b, y))))) for x in ca for y in cb
        ]
        out += [Cell(sid, (x, ALL), "margin", True, ((a, x),), complete=False) for x in ca]
        out += [Cell(sid, (ALL, y), "margin", True, ((b, y),), complete=False) for y in cb]
        out.append(Cell(sid, (ALL, ALL), "n", True, (), complete=False))
        return out
    return []  # logistic: its own rounds


def _num(value: float) -> str:
    return f"{value:g}"
