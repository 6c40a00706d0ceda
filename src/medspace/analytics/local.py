"""A node's local answer to a query: aggregates computed in SQL, then disclosure control.

`compute_local` runs one aggregate query per statistic over the feature table of
`medspace.analytics.features` (GROUP BY, or for a small contingency table one FILTER per
cell; no Python loop over patients: Python only places the aggregated rows into the
layout's cells), then applies `medspace.analytics.disclosure`.
What leaves the node is `LocalAggregate.values` (suppressed cells zeroed, then masked by
secure aggregation), `suppressed` and `refusals`; `cohort_size` and `cohort_ids` stay at
the node. `cohort_ids` (asked for with `with_cohort_ids`) come from the same pass as the
aggregates, so the differencing audit does not select the cohort a second time.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    Integer,
    Select,
    and_,
    case,
    func,
    literal,
    null,
    select,
)
from sqlalchemy.exc import SQLAlchemyError

from medspace.analytics.disclosure import protect, zeros_in_small_groups
from medspace.analytics.errors import AnalyticsError, Refused, SpecError
from medspace.analytics.features import (
    cohort_query,
    feature_table,
    joined_person_ids,
    materialised,
    parse_person_ids,
    read_person_ids,
)
from medspace.analytics.layout import ALL, TOTAL, Layout, bin_labels, layout
from medspace.analytics.released import ReleaseRecord, comparable
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
from medspace.store import NodeStore

BOUNDS_TOO_FEW = "bounds-below-min-cell"


@dataclass(frozen=True)
class LocalAggregate:
    """A node's disclosure-controlled contribution, one value per layout cell.

    `values[i]` is 0 where `suppressed[i]` names a reason. `refusals` maps a statistic
    id to why the node gives nothing for it. `cohort_size` is for the node's own log
    and the differencing audit: it never leaves the node. `cohort_ids` are the cohort's
    internal person ids, sorted (only when asked for), for the differencing audit: they
    never leave the node either.
    """

    values: list[float]
    suppressed: list[str | None]
    cohort_size: int
    refusals: dict[str, str] = field(default_factory=dict)
    cohort_ids: npt.NDArray[np.int64] | None = field(default=None, repr=False, compare=False)


def compute_local(
    store: NodeStore,
    spec: QuerySpec,
    *,
    exclude_pseudonyms: Collection[str] = (),
    min_cell_size: int,
    cleared: Callable[[npt.NDArray[np.int64]], ReleaseRecord | None] | None = None,
) -> LocalAggregate:
    """Compute the spec's non-regression statistics on this node's store and apply
    disclosure control with minimum cell size `min_cell_size`.

    `cleared`, when given, is handed the cohort's person ids (what `cohort_person_ids`
    returns) before disclosure control: the differencing audit, which raises to refuse
    the cohort, returning the release record the cells are then protected with (what
    was released about this cohort before). The result then carries the ids too.

    Raises `SpecError` for a bad minimum cell size and `AnalyticsError` when the
    database fails.
    """
    if min_cell_size < 1:
        raise SpecError("min_cell_size must be at least 1")
    cells = layout(spec)
    with_ids = cleared is not None
    try:
        with store.connect() as conn:
            raw, cohort_size, bounds_n, ids = _aggregate(
                conn, spec, cells, exclude_pseudonyms, with_ids
            )
    except SQLAlchemyError as exc:
        raise AnalyticsError(
            f"the node's database failed while computing the query ({type(exc).__name__}): "
            "check the node's database and retry"
        ) from None
    released = None
    if cleared is not None:
        if ids is None:
            ids = cohort_person_ids(store, spec, exclude_pseudonyms)
        released = cleared(ids)
    return disclose(spec, cells, raw, cohort_size, bounds_n, min_cell_size, ids, released)


def disclose(
    spec: QuerySpec,
    cells: Layout,
    raw: list[float],
    cohort_size: int,
    bounds_n: Mapping[str, int],
    min_cell_size: int,
    ids: npt.NDArray[np.int64] | None = None,
    released: ReleaseRecord | None = None,
) -> LocalAggregate:
    """Disclosure control on a node's raw cell values (`protect`: minimum cell size and
    complementary suppression; bounds refused below k patients with a value): what may
    leave the node. Shared by the SQL path and the in-memory one of an analysis session;
    both pass what was `released` about the cohort before (checked together, then
    recorded), unless the project uses differential privacy. A cohort of fewer than k
    patients is refused whole (`cohort-below-k`): every non-zero cell would be hidden,
    and the zeros left would describe those few patients (for one patient, each shown
    zero is an attribute they lack). An empty cohort is refused alike, or "her AND X"
    answered 0 against refused would tell whether she has X."""
    if cohort_size < min_cell_size and min_cell_size > 1:  # k = 1: no cell is hidden
        raise Refused(
            f"fewer than {min_cell_size} patients of this hospital are in the cohort "
            "(perhaps none): it gives nothing about them (even zero cells would describe "
            "them)",
            code="cohort-below-k",
        )
    small = zeros_in_small_groups(cells, raw, min_cell_size)
    if released is None:
        reasons = protect(cells, raw, min_cell_size, already=small)
    else:
        reasons = released.protect(comparable(spec, cells), raw, min_cell_size, already=small)
    refusals: dict[str, str] = {}
    raw = list(raw)
    for stat in spec.statistics:
        if not isinstance(stat, BoundsStat):
            continue
        if bounds_n.get(stat.id, 0) < min_cell_size:
            refusals[stat.id] = BOUNDS_TOO_FEW
            for i in cells.positions(stat.id):
                reasons[i] = BOUNDS_TOO_FEW
        # A bin counts as holding data only with at least k patients: with edges 0.001
        # apart, a bin of one would give that patient's value to 3 decimals.
        for i in cells.positions(stat.id):
            raw[i] = 1.0 if raw[i] >= min_cell_size else 0.0
    values = [
        0.0 if reason is not None else float(v) for v, reason in zip(raw, reasons, strict=True)
    ]
    return LocalAggregate(values, reasons, cohort_size, refusals, ids)


def cohort_person_ids(
    store: NodeStore, spec: QuerySpec, exclude: Collection[str] = ()
) -> npt.NDArray[np.int64]:
    """The internal person ids of the spec's cohort (sorted), for the differencing
    audit. They never leave the node."""
    try:
        with store.connect() as conn:
            return read_person_ids(conn, cohort_query(spec, exclude))
    except SQLAlchemyError as exc:
        raise AnalyticsError(
            f"the node's database failed while selecting the cohort ({type(exc).__name__})"
        ) from None


def _aggregate(
    conn: Connection,
    spec: QuerySpec,
    cells: Layout,
    exclude: Collection[str],
    with_ids: bool,
) -> tuple[list[float], int, dict[str, int], npt.NDArray[np.int64] | None]:
    """Raw cell values, the cohort size, per bounds statistic how many patients have a
    value (local only: bounds are refused below k), and with `with_ids` the cohort's
    person ids.

    One statistic is aggregated straight from the feature subquery, its person ids
    joined in the same query. Several go through a temporary table, so the features are
    computed once for all of them. Either way the database must not merge the feature
    subquery into the aggregate: SQLite's flattener would evaluate a per-patient
    subquery once for every place its column is used (measured 2-4x slower), which
    OFFSET 0 prevents."""
    stats = [s for s in spec.statistics if not isinstance(s, LogisticStat)]
    if len(stats) == 1 and isinstance(stats[0], CountStat) and not stats[0].by:
        # the network's plain count: one COUNT over the cohort
        if with_ids:
            members_ids = read_person_ids(conn, cohort_query(spec, exclude))
            return [float(members_ids.size)], int(members_ids.size), {}, members_ids
        members = cohort_query(spec, exclude).subquery()
        n = int(conn.execute(select(func.count()).select_from(members)).scalar_one())
        return [float(n)], n, {}, None
    names = sorted(_variables_of(stats))
    if len(stats) == 1:
        source = feature_table(spec, names, exclude, conn.dialect.name)
        f = select(*source.c).offset(0).subquery("features")
        joined = joined_person_ids(f.c.pid, conn.dialect.name)
        if not with_ids or joined is not None:
            reader = _Reader(conn, joined if with_ids else None)
            values, cohort_size, bounds_n = place(_sql_rows(reader, f, cells), stats, cells)
            return values, cohort_size, bounds_n, reader.ids(cohort_size) if with_ids else None
    with materialised(conn, spec, names, exclude) as table:
        rows = _sql_rows(_Reader(conn, None), table, cells)
        values, cohort_size, bounds_n = place(rows, stats, cells)
        ids = read_person_ids(conn, select(table.c.pid)) if with_ids else None
        return values, cohort_size, bounds_n, ids


class _Reader:
    """Runs a statistic's queries. Given `joined` (`joined_person_ids` of the source's
    person id), it adds that column to each query and keeps the texts, so the cohort's
    ids come from the statistic's own pass."""

    def __init__(self, conn: Connection, joined: ColumnElement[Any] | None) -> None:
        self._conn = conn
        self._joined = joined
        self._texts: list[str | None] = []

    def rows(self, query: Select[*tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The query's rows (without the joined ids)."""
        if self._joined is None:
            return [tuple(r) for r in self._conn.execute(query)]
        out = []
        for r in self._conn.execute(query.add_columns(self._joined)):
            self._texts.append(r[-1])
            out.append(tuple(r[:-1]))
        return out

    def ids(self, count: int) -> npt.NDArray[np.int64]:
        """The person ids the queries saw, sorted (`count` of them)."""
        return parse_person_ids(self._texts, count)


Row = tuple[tuple[str, ...], str, float]
StatisticRows = Callable[[Statistic], tuple[list[Row], int]]
"""A statistic's rows (labels, part, value) and the cohort size they were counted over."""


def _sql_rows(reader: _Reader, source: FromClause, cells: Layout) -> StatisticRows:
    return lambda stat: _statistic_rows(reader, source, stat, cells.domains)


def place(
    rows_of: StatisticRows, stats: Sequence[Statistic], cells: Layout
) -> tuple[list[float], int, dict[str, int]]:
    """The raw cell values of `stats` from their rows, the cohort size, and per bounds
    statistic how many patients have a value."""
    values = [0.0] * len(cells)
    position = {(c.statistic, c.labels, c.part): i for i, c in enumerate(cells.cells)}
    bounds_n: dict[str, int] = {}
    cohort_size = 0
    for stat in stats:
        rows, cohort_size = rows_of(stat)
        for labels, part, value in rows:
            if part == WITH_VALUE:
                bounds_n[stat.id] = int(value)
            else:
                values[position[(stat.id, labels, part)]] = value
    return values, cohort_size, bounds_n


def _variables_of(stats: Sequence[Statistic]) -> set[str]:
    used: set[str] = set()
    for stat in stats:
        used |= set(getattr(stat, "by", ()))
        used |= set(getattr(stat, "variables", ()))
        variable = getattr(stat, "variable", None)
        if isinstance(variable, str):
            used.add(variable)
    return used


WITH_VALUE = "with-value"
_FILTERED_CELLS = 64  # larger tables are counted by GROUP BY


def _statistic_rows(
    reader: _Reader, f: FromClause, stat: Statistic, domains: Mapping[str, tuple[str, ...]]
) -> tuple[list[Row], int]:
    """The statistic's cells from one aggregate query over `f`, and the number of rows
    of `f` (the cohort size: groups with a missing value are counted there, then
    dropped). `domains` are the categories of the categorical variables."""
    out: list[Row] = []
    everyone = 0
    if isinstance(stat, CountStat | SumStat | MeanStat | VarianceStat | ProportionStat):
        by = [f.c[n] for n in stat.by]
        if isinstance(stat, CountStat):
            measures: list[ColumnElement[Any]] = [func.count()]
        elif isinstance(stat, ProportionStat):
            x = f.c[stat.variable]
            by_x = [*by, x]
            query = select(*by_x, func.count()).group_by(*by_x)
            totals: dict[tuple[str, ...], float] = {}
            for r in reader.rows(query):
                everyone += int(r[-1])
                if any(v is None for v in r[:-1]):
                    continue
                labels = _text(r[: len(by)])
                out.append((labels, "yes" if int(r[-2]) == 1 else "no", float(r[-1])))
                totals[labels] = totals.get(labels, 0.0) + float(r[-1])
            out.extend((labels, "n", n) for labels, n in totals.items())
            return out, everyone
        else:
            x = f.c[stat.variable]
            measures = [func.count(), func.count(x), func.sum(x), func.sum(x * x)]
        query = select(*by, *measures).select_from(f).group_by(*by)
        for r in reader.rows(query):
            everyone += int(r[len(by)])
            if any(v is None for v in r[: len(by)]):
                continue
            labels = _text(r[: len(by)])
            if isinstance(stat, CountStat):
                out.append((labels, "n", float(r[-1])))
                continue
            n, total, squares = r[len(by) + 1], r[len(by) + 2], r[len(by) + 3]
            out.append((labels, "n", float(n)))
            out.append((labels, "sum", float(total or 0)))
            if isinstance(stat, VarianceStat):
                out.append((labels, "sumsq", float(squares or 0)))
        return out, everyone
    if isinstance(stat, HistogramStat | QuantilesStat | BoundsStat):
        x = f.c[stat.variable]
        labels = bin_labels(stat.edges)
        index = _bin_index(x, stat.edges)
        counts: dict[int, float] = {}
        for r in reader.rows(select(index, func.count()).group_by(index)):
            everyone += int(r[1])
            if r[0] is not None:
                counts[int(r[0])] = float(r[1])
        with_value = float(sum(counts.values()))
        if isinstance(stat, BoundsStat):  # the bins' counts, made flags by `disclose`
            out = [((labels[b],), "occupied", c) for b, c in counts.items() if c > 0]
            return [*out, ((), WITH_VALUE, with_value)], everyone
        out = [((labels[b],), "bin", c) for b, c in counts.items()]
        out.append(((TOTAL,), "n", with_value))
        return out, everyone
    if isinstance(stat, TableStat):
        cols = [f.c[n] for n in stat.variables]
        grid, everyone = _table_grid(reader, f, cols, [domains[n] for n in stat.variables])
        return table_rows(grid, len(cols)), everyone
    raise AssertionError(stat.kind)


def _table_grid(
    reader: _Reader,
    f: FromClause,
    cols: Sequence[ColumnElement[Any]],
    categories: Sequence[tuple[str, ...]],
) -> tuple[dict[tuple[str, ...], float], int]:
    """Patients per combination of categories (combinations with none left out), and
    the number of rows of `f`.

    A table of at most `_FILTERED_CELLS` cells is counted in one pass, one
    `count(*) FILTER (WHERE ...)` per cell: GROUP BY sorts the cohort first, which costs
    2.5 times the instructions for a 3 x 2 table of 100k patients (SQLite 3.40)."""
    combos = list(itertools.product(*categories))
    grid: dict[tuple[str, ...], float] = {}
    if len(combos) > _FILTERED_CELLS:
        everyone = 0
        for r in reader.rows(select(*cols, func.count()).group_by(*cols)):
            everyone += int(r[-1])
            if all(v is not None for v in r[:-1]):
                grid[_text(r[:-1])] = float(r[-1])
        return grid, everyone
    counts = [
        func.count().filter(
            and_(*(c == _category_value(c, label) for c, label in zip(cols, combo, strict=True)))
        )
        for combo in combos
    ]
    (row,) = reader.rows(select(func.count(), *counts).select_from(f))
    for combo, n in zip(combos, row[1:], strict=True):
        if n:
            grid[combo] = float(n)
    return grid, int(row[0])


def _category_value(column: ColumnElement[Any], label: str) -> Any:
    """The stored value of a category label: 0/1 variables are integer columns."""
    return int(label) if isinstance(column.type, Integer) else label


def table_rows(grid: dict[tuple[str, ...], float], dims: int) -> list[Row]:
    """A table's rows: its cells, its margins (two dimensions) and its total."""
    if dims == 1:
        rows: list[Row] = [(labels, "cell", n) for labels, n in grid.items()]
        rows.append(((TOTAL,), "n", sum(grid.values())))
        return rows
    rows = [(labels, "cell", n) for labels, n in grid.items()]
    row_margin: dict[str, float] = {}
    col_margin: dict[str, float] = {}
    for (a, b), n in grid.items():
        row_margin[a] = row_margin.get(a, 0.0) + n
        col_margin[b] = col_margin.get(b, 0.0) + n
    rows += [((a, ALL), "margin", n) for a, n in row_margin.items()]
    rows += [((ALL, b), "margin", n) for b, n in col_margin.items()]
    rows.append(((ALL, ALL), "n", sum(grid.values())))
    return rows


def _bin_index(x: ColumnElement[Any], edges: Sequence[float]) -> ColumnElement[Any]:
    """NULL for a missing value, 0 below the first edge, i for [e_i-1, e_i),
    len(edges) from the last edge up."""
    whens = [(x.is_(None), null()), *((x < edge, literal(i)) for i, edge in enumerate(edges))]
    return case(*whens, else_=literal(len(edges)))


def _text(values: Sequence[Any]) -> tuple[str, ...]:
    return tuple(str(v) for v in values)
