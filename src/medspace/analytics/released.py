"""What a node has released about one cohort so far, so that disclosure control sees
all answers about it together rather than one at a time.

A query's complementary suppression (`disclosure.protect`) checks every statistic of one
answer against the others. But a researcher can ask about one cohort again and again,
in separate queries or in an analysis session: a table whose small cell is hidden, then
the table's margins one by one in later answers, and subtract ("count by sex": 3 women
hidden; then "count": 63). The node therefore keeps, per project and cohort (the exact
set of patients: `medspace.analytics.release_book`), each count cell it has released
(its population: the conditions it counts) and whether it was shown or hidden, and
protects each new answer together with them:

1. the earlier cells join the new answer's layout as *fixed* cells (shown ones cannot be
   taken back, hidden ones stay hidden), and `protect` hides new cells, never old ones,
   until no hidden cell, old or new, can be recomputed from the shown ones;
2. if a hidden cell could still be recomputed with the new answer's help (a safety net:
   `protect` widens until none can, unless only earlier cells were left to hide), every
   cell of the new answer is withheld ("earlier-answers"): it then releases nothing new.

Populations are compared as the disclosure model does (conservatively: "patients with a
value" counts as "patients"), so repeating a statistic gives the same answer again.
Variables are compared by what they are, not by the name a query gives them
(`comparable`): "sex" in one query and "s" in the next are one variable; age bands cut
differently are two. The record also keeps which shown cells were 0: a zero empties
every atom it adds up, in a later answer's check too.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from typing import Any

from medspace.analytics.disclosure import exposed_cells, protect
from medspace.analytics.errors import AnalyticsError
from medspace.analytics.layout import Cell, Condition, Layout
from medspace.analytics.spec import QuerySpec, Variable
from medspace.memo import by_identity

EARLIER_ANSWERS = "earlier-answers"
_RELEASED = "released"
_FORMAT = 1
_MEMO_SIZE = 256

Population = tuple[Condition, ...]


def comparable(spec: QuerySpec, cells: Layout) -> Layout:
    """`cells` with each condition variable named by its definition instead of the name
    the spec gives it, so that answers to different queries about one cohort line up.
    Ages and age bands are named with the spec's reference date, which they depend on."""
    names = _variable_names(spec.variables, spec.reference_date)

    def rename(variable: str) -> str:
        base, bar, edges = variable.partition("|")  # a binned variable: name|edges
        return names.get(base, base) + bar + edges

    def population(conditions: Population) -> Population:
        return tuple(sorted((rename(v), c) for v, c in conditions))

    return Layout(
        tuple(replace(cell, population=population(cell.population)) for cell in cells.cells),
        {rename(v): categories for v, categories in cells.domains.items()},
        {rename(v): (rename(of), category) for v, (of, category) in cells.indicators.items()},
    )


@by_identity()
def _variable_names(variables: Mapping[str, Variable], reference_date: date) -> dict[str, str]:
    """Each variable's name by its definition (remembered per variables object: an
    analysis session's statistics share the opening's). A spec is frozen, its `variables`
    dict too (`medspace.frozen`); callers must not change the result either."""

    def definition(name: str) -> dict[str, Any]:
        defined: dict[str, Any] = variables[name].model_dump(mode="json")
        if defined["kind"] == "is":
            defined["of"] = definition(defined["of"])
        if defined["kind"] in ("age", "age_band"):
            defined["reference_date"] = reference_date.isoformat()
        return defined

    names = {}
    for name in variables:
        text = json.dumps(definition(name), sort_keys=True, separators=(",", ":"))
        names[name] = "var:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
    return names


class ReleaseRecord:
    """The count cells released about one cohort, by population: shown (True) or hidden.

    `saver`, when set, is called with the record's JSON each time an answer adds to it
    (under the record's lock, so saves keep the order of the answers)."""

    def __init__(self, saver: Callable[[str], None] | None = None) -> None:
        self._cells: dict[Population, bool] = {}
        self._zeros: set[Population] = set()  # shown with count 0
        self._domains: dict[str, tuple[str, ...]] = {}
        self._indicators: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()  # one answer at a time is checked and recorded
        self.saver = saver
        # Answers checked against the record as it is now: asking again what was asked
        # before gets the same reasons without solving again (cleared when it grows).
        self._memo: dict[tuple[Any, ...], list[str | None]] = {}

    def to_json(self) -> str:
        """The record as JSON (populations and flags, never a count)."""
        return json.dumps(
            {
                "format": _FORMAT,
                "cells": [
                    [[list(c) for c in pop], shown, pop in self._zeros]
                    for pop, shown in self._cells.items()
                ],
                "domains": {v: list(c) for v, c in self._domains.items()},
                "indicators": {v: list(t) for v, t in self._indicators.items()},
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> ReleaseRecord:
        """A record saved by `to_json`; raises `AnalyticsError` for anything else."""
        record = cls()
        try:
            data = json.loads(text)
            if data.get("format") != _FORMAT:
                raise ValueError("unknown format")
            for conditions, shown, zero in data["cells"]:
                pop = tuple((str(v), str(c)) for v, c in conditions)
                record._cells[pop] = bool(shown)
                if zero:
                    record._zeros.add(pop)
            record._domains = {str(v): tuple(map(str, c)) for v, c in data["domains"].items()}
            record._indicators = {
                str(v): (str(of), str(category)) for v, (of, category) in data["indicators"].items()
            }
        except (ValueError, TypeError, KeyError, AttributeError):
            raise AnalyticsError(
                "a saved release record is unreadable; the node refuses to answer about "
                "that cohort rather than forget what it released (restore analytics.db)"
            ) from None
        return record

    def __len__(self) -> int:
        return len(self._cells)

    def protect(
        self,
        cells: Layout,
        values: Sequence[float],
        min_cell_size: int,
        *,
        already: Sequence[str | None] | None = None,
    ) -> list[str | None]:
        """The reason each of the new answer's cells must be hidden, checked together
        with everything released before; the answer is then recorded as released.
        `already` marks new cells hidden for a reason decided before (as for
        `disclosure.protect`)."""
        marked = list(already) if already is not None else [None] * len(cells)
        key = (
            cells.cells,
            tuple(sorted(cells.domains.items())),
            tuple(sorted(cells.indicators.items())),
            tuple(values),
            min_cell_size,
            tuple(marked),
        )
        with self._lock:
            known = self._memo.get(key)
            if known is not None:
                return list(known)
            earlier = list(self._cells.items())
            combined = Layout(
                tuple(Cell(_RELEASED, (), "n", True, pop) for pop, _shown in earlier) + cells.cells,
                {**self._domains, **cells.domains},
                {**self._indicators, **cells.indicators},
            )
            fixed = range(len(earlier))
            already = [None if shown else _RELEASED for _pop, shown in earlier]
            # Earlier cells are fixed: only whether a shown one was 0 matters (1.0: not 0).
            earlier_values = [0.0 if pop in self._zeros else 1.0 for pop, _shown in earlier]
            combined_values = [*earlier_values, *values]
            reasons = protect(
                combined,
                combined_values,
                min_cell_size,
                already=[*already, *marked],
                fixed=fixed,
            )
            new = reasons[len(earlier) :]
            if _newly_exposed(combined, reasons, combined_values, len(earlier)):
                new = _withhold(new)
            if self._record(cells, values, new):
                self._memo.clear()
                if self.saver is not None:
                    self.saver(self.to_json())
            else:
                if len(self._memo) >= _MEMO_SIZE:
                    self._memo.clear()
                self._memo[key] = list(new)
            return new

    def _record(
        self, cells: Layout, values: Sequence[float], reasons: Sequence[str | None]
    ) -> bool:
        """Add the answer's cells; whether the record changed."""
        changed = any(self._domains.get(v) != c for v, c in cells.domains.items()) or any(
            self._indicators.get(v) != t for v, t in cells.indicators.items()
        )
        for cell, value, reason in zip(cells.cells, values, reasons, strict=True):
            if not cell.count or (not cell.complete and value == 0):
                # A mean's n of 0 says nobody has a value, not how many the group holds:
                # recorded as "the group was shown", it let a later count of 3 go free.
                continue
            pop, shown = cell.population, reason is None
            # A population recorded hidden stays hidden, whatever a later cell of it says
            # (protecting it needlessly errs on the side of hiding).
            if pop not in self._cells:
                self._cells[pop] = shown
                changed = True
            if shown and value == 0 and cell.complete and pop not in self._zeros:
                self._zeros.add(pop)
                changed = True
        self._domains.update(cells.domains)
        self._indicators.update(cells.indicators)
        return changed


def _newly_exposed(
    combined: Layout, reasons: Sequence[str | None], values: Sequence[float], earlier: int
) -> bool:
    """Whether a hidden cell can be recomputed with this answer's shown cells that could
    not be from the earlier answers' alone. (A new cell the model already equates with
    earlier shown ones, e.g. "patients with an HbA1c" with "patients", is exposed by
    those alone: this answer adds nothing to that.)"""
    exposed = set(exposed_cells(combined, reasons, values))
    if not exposed:
        return False
    nothing_new = [
        reason if i < earlier or not cell.count else reason or _RELEASED
        for i, (cell, reason) in enumerate(zip(combined.cells, reasons, strict=True))
    ]
    return bool(exposed - set(exposed_cells(combined, nothing_new, values)))


def _withhold(reasons: Sequence[str | None]) -> list[str | None]:
    """Every cell hidden: the answer releases nothing new."""
    return [reason or EARLIER_ANSWERS for reason in reasons]


__all__ = ["EARLIER_ANSWERS", "ReleaseRecord", "comparable"]
