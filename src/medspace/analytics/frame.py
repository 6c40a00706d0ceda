"""A session cohort's features in memory, and the statistics computed over them.

An analysis session (docs/analytics.md, "Analysis sessions") selects its cohort once; the
node keeps one row per patient of the session's variables as numpy columns (a few MB for
100k patients) and answers each further statistic from them, without going back to the
store. `FeatureFrame.aggregate` gives exactly what `compute_local` gives for the same
spec (the same rows per statistic, then the same disclosure control, `disclose`); tests
hold the two paths equal for every statistic kind, on SQLite and PostgreSQL.

Columns: a numeric or 0/1 variable is float64 with NaN where the patient has no value;
a categorical one (sex, age band, observation category, and the 0/1 variables again) is
an integer code per patient, -1 where missing, with its labels. The features never leave
the node and are dropped when the session closes or expires.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from medspace.analytics.errors import AnalyticsError
from medspace.analytics.features import feature_table
from medspace.analytics.layout import TOTAL, bin_labels, layout
from medspace.analytics.local import (
    WITH_VALUE,
    LocalAggregate,
    Row,
    disclose,
    place,
    table_rows,
)
from medspace.analytics.released import ReleaseRecord
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
from medspace.analytics.spec_variables import BINARY_KINDS, NUMERIC_KINDS
from medspace.store import NodeStore

Floats = npt.NDArray[np.float64]
Codes = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Category:
    """A categorical column: a code per patient (-1 where missing) and the labels."""

    codes: Codes
    labels: tuple[str, ...]


@dataclass(frozen=True)
class FeatureFrame:
    """The features of one session's cohort, one row per patient."""

    size: int
    numbers: Mapping[str, Floats]
    categories: Mapping[str, Category]
    ids: Codes  # the patients' internal person ids, sorted (for the differencing audit)

    @classmethod
    def load(
        cls, store: NodeStore, spec: QuerySpec, exclude_pseudonyms: Collection[str] = ()
    ) -> FeatureFrame:
        """Select the spec's cohort (opted-out patients left out) with every variable the
        spec defines. Raises `AnalyticsError` when the database fails."""
        names = sorted(spec.variables)
        try:
            with store.connect() as conn:
                source = feature_table(spec, names, exclude_pseudonyms, conn.dialect.name)
                rows = conn.execute(select(*source.c).order_by(source.c.pid)).all()
        except SQLAlchemyError as exc:
            raise AnalyticsError(
                f"the node's database failed while selecting the session's cohort "
                f"({type(exc).__name__}): check the node's database and retry"
            ) from None
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in source.c]
        by_name = {c.name: values for c, values in zip(source.c, columns, strict=True)}
        numbers: dict[str, Floats] = {}
        categories: dict[str, Category] = {}
        for name in names:
            kind = spec.variables[name].kind
            values = by_name[name]
            if kind in NUMERIC_KINDS:
                numbers[name] = np.array(values, dtype=np.float64)  # None becomes NaN
            if kind in BINARY_KINDS:
                x = numbers[name]
                codes = np.where(np.isnan(x), -1, np.nan_to_num(x)).astype(np.int64)
                categories[name] = Category(codes, ("0", "1"))
            elif kind not in NUMERIC_KINDS:
                categories[name] = _categorical(values)
        ids = np.array(by_name["pid"], dtype=np.int64)
        return cls(len(rows), numbers, categories, ids)

    @property
    def nbytes(self) -> int:
        """Memory the columns hold."""
        numbers = sum(a.nbytes for a in self.numbers.values())
        return numbers + sum(c.codes.nbytes for c in self.categories.values()) + self.ids.nbytes

    def aggregate(
        self, spec: QuerySpec, *, min_cell_size: int, released: ReleaseRecord | None = None
    ) -> LocalAggregate:
        """The spec's statistics over this cohort, disclosure-controlled: what
        `compute_local` gives for the same spec on the store. The spec may only use this
        frame's variables and no regression (a session's later statistics). With
        `released`, the cells are protected together with what it holds, and recorded."""
        stats = [s for s in spec.statistics if not isinstance(s, LogisticStat)]
        cells = layout(spec)
        raw, cohort_size, bounds_n = place(self._rows, stats, cells)
        return disclose(spec, cells, raw, cohort_size, bounds_n, min_cell_size, released=released)

    # -- one statistic's rows (as `medspace.analytics.local._statistic_rows` gives) ----

    def _rows(self, stat: Statistic) -> tuple[list[Row], int]:
        if isinstance(stat, ProportionStat):
            return self._proportion(stat), self.size
        if isinstance(stat, CountStat | SumStat | MeanStat | VarianceStat):
            return self._moments(stat), self.size
        if isinstance(stat, HistogramStat | QuantilesStat | BoundsStat):
            return self._bins(stat), self.size
        if isinstance(stat, TableStat):
            labels, counts = self._groups(stat.variables)
            grid = {key: float(n) for key, n in zip(labels, counts, strict=True) if n}
            return table_rows(grid, len(stat.variables)), self.size
        raise AssertionError(stat.kind)

    def _moments(self, stat: CountStat | SumStat | MeanStat | VarianceStat) -> list[Row]:
        if not stat.by:
            return self._moments_of_everyone(stat)
        keep, labels, group = self._grouping(stat.by)
        if isinstance(stat, CountStat):
            counts = np.bincount(group, minlength=len(labels))
            return [(key, "n", float(n)) for key, n in zip(labels, counts, strict=True)]
        x = self.numbers[stat.variable][keep]
        present = ~np.isnan(x)
        g, v = group[present], x[present]
        n = np.bincount(g, minlength=len(labels))
        total = np.bincount(g, weights=v, minlength=len(labels))
        squares = np.bincount(g, weights=v * v, minlength=len(labels))
        out: list[Row] = []
        for i, key in enumerate(labels):
            out.append((key, "n", float(n[i])))
            out.append((key, "sum", float(total[i])))
            if isinstance(stat, VarianceStat):
                out.append((key, "sumsq", float(squares[i])))
        return out

    def _moments_of_everyone(
        self, stat: CountStat | SumStat | MeanStat | VarianceStat
    ) -> list[Row]:
        if isinstance(stat, CountStat):
            return [((), "n", float(self.size))]
        x = self.numbers[stat.variable]
        v = x[~np.isnan(x)]
        out: list[Row] = [((), "n", float(v.size)), ((), "sum", float(v.sum()))]
        if isinstance(stat, VarianceStat):
            out.append(((), "sumsq", float(np.dot(v, v))))
        return out

    def _proportion(self, stat: ProportionStat) -> list[Row]:
        labels, counts = self._groups((*stat.by, stat.variable))
        out: list[Row] = []
        totals: dict[tuple[str, ...], float] = {}
        for key, n in zip(labels, counts, strict=True):
            group = key[:-1]
            out.append((group, "yes" if key[-1] == "1" else "no", float(n)))
            totals[group] = totals.get(group, 0.0) + float(n)
        out.extend((group, "n", n) for group, n in totals.items())
        return out

    def _bins(self, stat: HistogramStat | QuantilesStat | BoundsStat) -> list[Row]:
        x = self.numbers[stat.variable]
        x = x[~np.isnan(x)]
        labels = bin_labels(stat.edges)
        # bin i holds [edge i-1, edge i); below the first edge is 0, from the last up is
        # len(edges): the number of edges at or below x
        counts = np.bincount(
            np.searchsorted(np.asarray(stat.edges), x, side="right"),
            minlength=len(stat.edges) + 1,
        )
        occupied = [(b, float(c)) for b, c in enumerate(counts) if c > 0]
        if isinstance(stat, BoundsStat):
            rows: list[Row] = [((labels[b],), "occupied", c) for b, c in occupied]
            return [*rows, ((), WITH_VALUE, float(x.size))]
        return [*(((labels[b],), "bin", c) for b, c in occupied), ((TOTAL,), "n", float(x.size))]

    # -- grouping ---------------------------------------------------------------------

    def _grouping(
        self, names: Sequence[str]
    ) -> tuple[npt.NDArray[np.bool_], list[tuple[str, ...]], Codes]:
        """Rows with no missing `names` value, the labels of the groups that occur, and
        the group of each kept row. Without `names`, one group of everyone (present even
        when empty). Groups are counted by one integer key per row (the codes in mixed
        radix), an O(n) pass; sorting the rows (np.unique) cost 50 ms for 100k."""
        if not names:
            return np.ones(self.size, dtype=bool), [()], np.zeros(self.size, dtype=np.int64)
        columns = [self.categories[n] for n in names]
        keep = np.logical_and.reduce([c.codes >= 0 for c in columns])
        sizes = [max(len(c.labels), 1) for c in columns]
        key = np.zeros(int(np.count_nonzero(keep)), dtype=np.int64)
        radix = 1
        for column, size in zip(columns, sizes, strict=True):
            key += column.codes[keep] * radix
            radix *= size
        counts = np.bincount(key, minlength=radix)
        present = np.flatnonzero(counts)
        compact = np.full(radix, -1, dtype=np.int64)
        compact[present] = np.arange(present.size)
        labels = []
        for combined in present.tolist():
            parts = []
            for column, size in zip(columns, sizes, strict=True):
                parts.append(column.labels[combined % size])
                combined //= size
            labels.append(tuple(parts))
        return keep, labels, compact[key]

    def _groups(self, names: Sequence[str]) -> tuple[list[tuple[str, ...]], Codes]:
        """The groups of `names` that occur (no value missing) and their sizes."""
        _keep, labels, group = self._grouping(names)
        return labels, np.bincount(group, minlength=len(labels))


def _categorical(values: Sequence[object]) -> Category:
    """Codes for a column of labels (None where missing), labels in first-seen order."""
    index: dict[str, int] = {}
    codes = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        if value is None:
            codes[i] = -1
        else:
            codes[i] = index.setdefault(str(value), len(index))
    return Category(codes, tuple(index))


__all__ = ["Category", "FeatureFrame"]
