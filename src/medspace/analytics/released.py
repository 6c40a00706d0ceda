"""What an analysis session has released so far, so that disclosure control sees a
session's answers together rather than one at a time.

A query's complementary suppression (`disclosure.protect`) checks every statistic of one
answer against the others. A session answers statistic after statistic over one cohort,
so a researcher could ask a table whose small cell is hidden, then the table's margins
one by one in later answers, and subtract. The node therefore keeps, per session, each
count cell it has released (its population: the conditions it counts) and whether it
was shown or hidden, and protects each new answer together with them:

1. the earlier cells join the new answer's layout as *fixed* cells (shown ones cannot be
   taken back, hidden ones stay hidden), and `protect` hides new cells, never old ones,
   until no hidden cell, old or new, can be recomputed from the shown ones;
2. if a hidden cell could still be recomputed with the new answer's help (a safety net:
   `protect` widens until none can, unless only earlier cells were left to hide), every
   cell of the new answer is withheld ("earlier-answers"): it then releases nothing new.

Populations are compared as the disclosure model does (conservatively: "patients with a
value" counts as "patients"), so repeating a statistic gives the same answer again. The
record also keeps which shown cells were 0: a zero empties every atom it adds up, in a
later answer's check too.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from medspace.analytics.disclosure import exposed_cells, protect
from medspace.analytics.layout import Cell, Condition, Layout

EARLIER_ANSWERS = "earlier-answers"
_RELEASED = "released"


class ReleaseRecord:
    """The count cells one session released, by population: shown (True) or hidden."""

    def __init__(self) -> None:
        self._cells: dict[tuple[Condition, ...], bool] = {}
        self._zeros: set[tuple[Condition, ...]] = set()  # shown with count 0
        self._domains: dict[str, tuple[str, ...]] = {}
        self._indicators: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()  # one answer at a time is checked and recorded

    def __len__(self) -> int:
        return len(self._cells)

    def protect(
        self, cells: Layout, values: Sequence[float], min_cell_size: int
    ) -> list[str | None]:
        """The reason each of the new answer's cells must be hidden, checked together
        with everything released before; the answer is then recorded as released."""
        with self._lock:
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
                already=[*already, *([None] * len(cells))],
                fixed=fixed,
            )
            new = reasons[len(earlier) :]
            if _newly_exposed(combined, reasons, combined_values, len(earlier)):
                new = _withhold(new)
            self._record(cells, values, new)
            return new

    def _record(
        self, cells: Layout, values: Sequence[float], reasons: Sequence[str | None]
    ) -> None:
        for cell, value, reason in zip(cells.cells, values, reasons, strict=True):
            if cell.count:
                shown = reason is None
                self._cells[cell.population] = self._cells.get(cell.population, False) or shown
                if shown and value == 0:
                    self._zeros.add(cell.population)
        self._domains.update(cells.domains)
        self._indicators.update(cells.indicators)


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


__all__ = ["EARLIER_ANSWERS", "ReleaseRecord"]
