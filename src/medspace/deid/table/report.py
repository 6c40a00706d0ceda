"""Risk reports of a table: measured once, shown as a Rich table, exported as a dict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
from rich.console import Console
from rich.table import Table as RichTable

from medspace.deid.table.frame import Table
from medspace.deid.table.hierarchy import TOP, factorise
from medspace.deid.table.measure import (
    Classes,
    IntArray,
    Risk,
    classes_of,
    combine,
    entropy_l_diversity,
    k_anonymity,
    l_diversity,
    risk,
    t_closeness,
)


@dataclass(frozen=True)
class RiskReport:
    """Privacy and risk of a table over its quasi-identifiers (suppressed rows excluded)."""

    quasi_identifiers: tuple[str, ...]
    records: int
    suppressed: int
    classes: int
    k: int
    risk: Risk
    sensitive: str | None = None
    l_distinct: int | None = None
    l_entropy: float | None = None
    t: float | None = None

    def as_dict(self) -> dict[str, object]:
        """Plain values, for JSON."""
        return asdict(self)


def _factorise(values: Sequence[str]) -> tuple[IntArray, int]:
    distinct, codes = factorise(values)
    return codes, len(distinct)


def is_numeric(values: Sequence[str]) -> bool:
    """True when every non-empty value reads as a number (ordered t-closeness)."""
    seen = False
    for v in values:
        if v == "":
            continue
        try:
            float(v)
        except ValueError:
            return False
        seen = True
    return seen


def sensitive_codes(values: Sequence[str], ordered: bool) -> IntArray:
    """Codes of sensitive values, in numeric order when `ordered`."""
    if ordered:
        numbers = np.asarray([float(v) if v != "" else np.nan for v in values])
        _, inverse = np.unique(numbers, return_inverse=True)
        return inverse.astype(np.int64).reshape(-1)
    return _factorise(values)[0]


def measure_table(
    table: Table,
    quasi_identifiers: Sequence[str],
    *,
    sensitive: str | None = None,
    ordered: bool | None = None,
    threshold: float = 0.2,
    population: Table | None = None,
) -> RiskReport:
    """Measure k, l, t and risk over `quasi_identifiers`.

    Rows whose quasi-identifiers are all "*" (suppressed) are excluded and counted.
    `population` (same quasi-identifier columns) enables the journalist model.
    """
    qi = list(quasi_identifiers)
    columns = [table.column(c) for c in qi]
    keep = np.ones(table.rows, dtype=bool)
    if qi:
        stars = [np.asarray(col, dtype=object) == TOP for col in columns]
        keep = ~np.logical_and.reduce(stars)
    suppressed = int((~keep).sum())
    rows = np.flatnonzero(keep)
    kept_columns = [[col[i] for i in rows] for col in columns]
    population_sizes = None
    if population is not None:
        sizes = _population_sizes(kept_columns, [population.column(c) for c in qi])
        classes = sizes[0]
        population_sizes = sizes[1]
    else:
        codes = [_factorise(col) for col in kept_columns]
        classes = classes_of(combine([c for c, _ in codes], [n for _, n in codes]))
    report = RiskReport(
        quasi_identifiers=tuple(qi),
        records=len(rows),
        suppressed=suppressed,
        classes=classes.count,
        k=k_anonymity(classes),
        risk=risk(classes, threshold=threshold, population_sizes=population_sizes),
    )
    if sensitive is None:
        return report
    values = [table.column(sensitive)[i] for i in rows]
    ordered = is_numeric(values) if ordered is None else ordered
    codes_s = sensitive_codes(values, ordered)
    return replace(
        report,
        sensitive=sensitive,
        l_distinct=l_diversity(classes, codes_s),
        l_entropy=entropy_l_diversity(classes, codes_s),
        t=t_closeness(classes, codes_s, ordered=ordered),
    )


def _population_sizes(
    sample: list[list[str]], population: list[list[str]]
) -> tuple[Classes, IntArray]:
    """Sample classes and, per class, the size of the same class in the population."""
    n = len(sample[0]) if sample else 0
    codes: list[IntArray] = []
    cards: list[int] = []
    for s_col, p_col in zip(sample, population, strict=True):
        joined, card = _factorise([*s_col, *p_col])
        codes.append(joined)
        cards.append(card)
    key = combine(codes, cards)
    sample_key, population_key = key[:n], key[n:]
    classes = classes_of(sample_key)
    first_key = np.zeros(classes.count, dtype=np.int64)
    first_key[classes.index] = sample_key
    unique, counts = np.unique(population_key, return_counts=True)
    if len(unique) == 0:
        return classes, np.zeros(classes.count, dtype=np.int64)
    pos = np.minimum(np.searchsorted(unique, first_key), len(unique) - 1)
    sizes = np.where(unique[pos] == first_key, counts[pos], 0).astype(np.int64)
    return classes, sizes


def render_reports(
    console: Console, reports: Sequence[tuple[str, RiskReport]], *, title: str
) -> None:
    """Print reports side by side ("before", "after") as one Rich table."""
    grid = RichTable(title=title, show_lines=False)
    grid.add_column("measure")
    for name, _ in reports:
        grid.add_column(name, justify="right")

    def row(label: str, values: Sequence[str]) -> None:
        grid.add_row(label, *values)

    def fmt(value: float | int | None, digits: int = 4) -> str:
        if value is None:
            return "-"
        return f"{value:.{digits}f}" if isinstance(value, float) else f"{value:,}"

    rs = [r for _, r in reports]
    row("records (released)", [fmt(r.records) for r in rs])
    row("suppressed records", [fmt(r.suppressed) for r in rs])
    row("equivalence classes", [fmt(r.classes) for r in rs])
    row("k (smallest class)", [fmt(r.k) for r in rs])
    row("prosecutor risk, highest", [fmt(r.risk.prosecutor_max) for r in rs])
    row("prosecutor risk, average", [fmt(r.risk.prosecutor_avg) for r in rs])
    row(f"records at risk > {rs[0].risk.threshold:g}", [fmt(r.risk.records_at_risk) for r in rs])
    journalist = "journalist risk, highest" + ("" if rs[0].risk.population else " (no population)")
    row(journalist, [fmt(r.risk.journalist_max) for r in rs])
    row("marketer risk", [fmt(r.risk.marketer) for r in rs])
    if any(r.sensitive for r in rs):
        row("l-diversity (distinct)", [fmt(r.l_distinct) for r in rs])
        row("l-diversity (entropy)", [fmt(r.l_entropy, 2) for r in rs])
        row("t-closeness", [fmt(r.t) for r in rs])
    console.print(grid)
