"""Disclosure control on a vector of cells: minimum cell size and complementary
suppression, so that no suppressed cell can be recomputed from the cells shown.

The rules (docs/analytics.md lists them for stewards):

1. *Primary*: a count cell with 0 < n < k is suppressed ("below-min-cell"). A zero is
   kept: it says only that nobody at the node is in that cell, and suppressing zeros
   would hide structural zeros (e.g. an age band nobody can be in) for no gain.
2. *Complementary*: cells that add up to another cell form an equation (a table's row
   and its row margin, a histogram's bins and its total, a proportion's yes + no = n,
   and the same population counted by two statistics of one query). In every equation
   where exactly one member is suppressed, the smallest non-zero member left is
   suppressed too ("complementary"), until no equation has a single suppressed member.
3. *Exact check*: every count cell is a sum over atoms (combinations of categories of
   all the variables the query conditions on, `medspace.analytics.atoms`); a hidden
   cell is recomputable exactly when its row of atoms lies in the row space of the
   shown cells' rows. That catches what margins miss, across statistics and through
   shown zeros: a count is never negative, so the atoms of a shown zero are known to be
   empty and leave the model. Any such cell gets one more complementary suppression (a cell the
   attacker would use), and the check repeats, so the final pattern leaves every
   suppressed cell undetermined. Queries with more than 4,096 atoms fall back to the
   equations of rule 2 as one linear system (SVD null space of the suppressed cells).
4. A sum, sum of squares (behind a mean or variance) follows its n: hidden when the n
   is ("follows-n").

Populations are compared conservatively: a cell counting "patients with hba1c" and one
counting "patients" are treated as the same population, so more, never fewer, equations
are assumed than truly hold.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence

import numpy as np

from medspace.analytics import atoms
from medspace.analytics.layout import Layout

BELOW_MIN_CELL = "below-min-cell"
COMPLEMENTARY = "complementary"
FOLLOWS_N = "follows-n"
EMPTY_BY_ZERO = "empty-by-zero"
ZERO_IN_SMALL_GROUP = "zero-in-small-group"

Equation = tuple[int, tuple[int, ...]]
_MAX_EXACT_UNKNOWNS = 3000


def equations(layout: Layout) -> list[Equation]:
    """(total, parts) index pairs: the cells at `parts` add up to the cell at `total`."""
    by_population: dict[tuple[tuple[str, str], ...], list[int]] = defaultdict(list)
    for i, cell in enumerate(layout.cells):
        if cell.count:
            by_population[cell.population].append(i)
    found: list[Equation] = []
    for same in by_population.values():
        found.extend((same[0], (other,)) for other in same[1:])
    children: dict[tuple[tuple[tuple[str, str], ...], str], dict[str, int]] = defaultdict(dict)
    for population, indices in by_population.items():
        for condition in population:
            parent = tuple(c for c in population if c != condition)
            children[(parent, condition[0])][condition[1]] = indices[0]
    for (parent, variable), cells in children.items():
        if parent in by_population and len(cells) == len(layout.domains.get(variable, ())):
            found.append((by_population[parent][0], tuple(sorted(cells.values()))))
    found.extend(_indicator_links(layout, by_population))
    return found


def _indicator_links(
    layout: Layout, by_population: dict[tuple[tuple[str, str], ...], list[int]]
) -> list[Equation]:
    """Cells counted through an `is` indicator equal cells counted through the variable
    it indicates: "is = 1" is "variable = category", "is = 0" the other categories."""
    links: list[Equation] = []
    for population, indices in by_population.items():
        for condition in population:
            target = layout.indicators.get(condition[0])
            if target is None:
                continue
            variable, category = target
            rest = tuple(c for c in population if c != condition)
            if condition[1] == "1":
                wanted = [(variable, category)]
            else:
                wanted = [(variable, c) for c in layout.domains[variable] if c != category]
            parts = [by_population.get(tuple(sorted((*rest, w)))) for w in wanted]
            if all(parts):
                links.append((indices[0], tuple(p[0] for p in parts if p)))
    return links


def zeros_in_small_groups(
    layout: Layout, values: Sequence[float], min_cell_size: int
) -> list[str | None]:
    """`ZERO_IN_SMALL_GROUP` for each zero count cell inside a group of 1 to k - 1
    patients, else None. "Aged 43, no diabetes: 0" beside a hidden "aged 43, diabetes"
    says everyone aged 43 has diabetes; if that is one known patient, it is her
    diagnosis. A cell's groups are its population with one condition dropped. A group is
    sized from any count cell of the answer with that population (any statistic or part:
    a proportion's n sizes its yes and no), and from the cells that split it by the
    dropped condition's variable; either size below k hides the zero."""
    counted: dict[frozenset[tuple[str, str]], float] = {}
    for cell, value in zip(layout.cells, values, strict=True):
        if cell.count:
            population = frozenset(cell.population)
            counted[population] = max(counted.get(population, 0.0), float(value))
    marks: list[str | None] = [None] * len(layout.cells)
    for i, cell in enumerate(layout.cells):
        if not cell.count or values[i] != 0:
            continue
        for condition in cell.population:
            variable = condition[0]
            rest = frozenset(c for c in cell.population if c != condition)
            sizes = [counted[rest]] if rest in counted else []
            split = [rest | {(variable, category)} for category in layout.domains.get(variable, ())]
            if split and all(part in counted for part in split):
                sizes.append(sum(counted[part] for part in split))
            if any(0 < size < min_cell_size for size in sizes):
                marks[i] = ZERO_IN_SMALL_GROUP
                break
    return marks


def protect(
    layout: Layout,
    values: Sequence[float],
    min_cell_size: int,
    *,
    already: Sequence[str | None] | None = None,
    fixed: Collection[int] = (),
) -> list[str | None]:
    """The reason each cell must be hidden (None: may be shown).

    `already` marks cells hidden for a reason decided elsewhere (e.g. a node suppressed
    them); they count as suppressed for the complementary rules. `fixed` cells keep the
    state `already` gives them (cells released in an earlier answer: shown ones cannot be
    taken back); they are never chosen as complements. With fixed cells the result may
    still leave a hidden cell recomputable (`exposed_cells` says which).
    """
    if len(values) != len(layout.cells):
        raise ValueError("the vector does not match the layout")
    reasons: list[str | None] = list(already) if already is not None else [None] * len(values)
    frozen = frozenset(fixed)
    for i, cell in enumerate(layout.cells):
        if cell.count and reasons[i] is None and i not in frozen and 0 < values[i] < min_cell_size:
            reasons[i] = BELOW_MIN_CELL
    system = equations(layout)
    rows = atoms.atom_rows(layout)
    while True:
        _complement_singles(system, values, reasons, frozen)
        if rows is not None:
            if not _widen_atoms(layout, rows, values, reasons, frozen):
                break
            continue
        recomputable = _recomputable(system, reasons)
        if not recomputable:
            break
        if not _widen(system, values, reasons, recomputable, frozen):
            break  # nothing left to hide in those equations (only fixed cells are left)
    if rows is not None and _zeros_contradict(layout, rows, values, reasons):
        for i, cell in enumerate(layout.cells):
            if cell.count and i not in frozen:
                reasons[i] = reasons[i] or EMPTY_BY_ZERO
    _follow_n(layout, reasons)
    return reasons


def _zeros_contradict(
    layout: Layout, rows: atoms.Rows, values: Sequence[float], reasons: Sequence[str | None]
) -> bool:
    """Whether the shown zeros empty every atom of a cell that is not 0. The model gives
    every patient a value of every variable; a patient without one (no such lab, a sex
    outside the categories) is in no category, so zeros in all of a variable's categories
    read as "nobody at all" and a hidden cell of 3 would seem to hold nobody. The model
    cannot check such an answer, so it is withheld whole."""
    _hidden, _shown, zeros = _split(layout, reasons, values)
    if not zeros:
        return False
    left = ~atoms.empty_atoms(rows, zeros)
    return any(
        cell.count and values[i] != 0 and rows[i].any() and not rows[i][left].any()
        for i, cell in enumerate(layout.cells)
    )


def exposed_cells(
    layout: Layout, reasons: Sequence[str | None], values: Sequence[float]
) -> list[int]:
    """The hidden count cells an attacker can recompute exactly from the shown ones and
    their `values` (the same models `protect` uses; only which shown values are 0
    matters); empty for what `protect` returns without fixed cells."""
    rows = atoms.atom_rows(layout)
    if rows is None:
        return _recomputable(equations(layout), reasons)
    hidden, shown, zeros = _split(layout, reasons, values)
    return atoms.exposed(rows, hidden, shown, zeros)


def _split(
    layout: Layout, reasons: Sequence[str | None], values: Sequence[float]
) -> tuple[list[int], list[int], list[int]]:
    """The count cells: hidden, shown, and shown with count 0 where that says the whole
    population is empty (not the n of a mean, whose 0 says only that nobody has a value)."""
    cells = layout.cells
    counts = [i for i, c in enumerate(cells) if c.count]
    hidden = [i for i in counts if reasons[i] is not None]
    shown = [i for i in counts if reasons[i] is None]
    return hidden, shown, [i for i in shown if values[i] == 0 and cells[i].complete]


def _widen_atoms(
    layout: Layout,
    rows: atoms.Rows,
    values: Sequence[float],
    reasons: list[str | None],
    frozen: frozenset[int],
) -> bool:
    """Hide one more cell for each hidden count cell the atom model can recompute;
    False when none can be (or nothing is left to hide)."""
    hidden, shown, zeros = _split(layout, reasons, values)
    found = atoms.exposed(rows, hidden, shown, zeros)
    widened = False
    for used in atoms.helpers(rows, found, shown, zeros):
        candidates = [m for m in used if reasons[m] is None and m not in frozen]
        if any(reasons[m] is not None for m in used) or not candidates:
            continue  # an earlier choice in this round already broke this combination
        # prefer the smallest non-zero helper; a zero one only when all used are zero
        chosen = min(candidates, key=lambda m: (values[m] == 0, values[m], m))
        reasons[chosen] = COMPLEMENTARY
        widened = True
    return widened


def _complement_singles(
    system: list[Equation],
    values: Sequence[float],
    reasons: list[str | None],
    frozen: frozenset[int],
) -> None:
    changed = True
    while changed:
        changed = False
        for total, parts in system:
            members = (total, *parts)
            if sum(reasons[m] is not None for m in members) == 1 and _hide_smallest(
                members, values, reasons, frozen
            ):
                changed = True


def _hide_smallest(
    members: Sequence[int],
    values: Sequence[float],
    reasons: list[str | None],
    frozen: frozenset[int],
) -> bool:
    candidates = [m for m in members if reasons[m] is None and values[m] != 0 and m not in frozen]
    if not candidates:
        return False
    chosen = min(candidates, key=lambda m: (values[m], m))
    reasons[chosen] = COMPLEMENTARY
    return True


def _recomputable(system: list[Equation], reasons: Sequence[str | None]) -> list[int]:
    """Suppressed cells that the equations determine exactly."""
    unknowns = sorted({m for t, p in system for m in (t, *p) if reasons[m] is not None})
    if not unknowns:
        return []
    column = {u: j for j, u in enumerate(unknowns)}
    rows = []
    for total, parts in system:
        row = np.zeros(len(unknowns))
        if total in column:
            row[column[total]] += 1.0
        for p in parts:
            if p in column:
                row[column[p]] -= 1.0
        if row.any():
            rows.append(row)
    if not rows:
        return []
    if len(unknowns) > _MAX_EXACT_UNKNOWNS:
        return []  # too large for the SVD: rule 2 (already applied) stands alone
    matrix = np.vstack(rows)
    _, singular, vt = np.linalg.svd(matrix)
    rank = int((singular > 1e-9 * max(1.0, singular[0])).sum())
    null_space = vt[rank:]
    if null_space.shape[0] == 0:
        return unknowns
    free = np.abs(null_space).max(axis=0) > 1e-9
    return [u for u, is_free in zip(unknowns, free, strict=True) if not is_free]


def _widen(
    system: list[Equation],
    values: Sequence[float],
    reasons: list[str | None],
    recomputable: list[int],
    frozen: frozenset[int],
) -> bool:
    widened = False
    for cell in recomputable:
        for total, parts in system:
            members = (total, *parts)
            if cell in members and _hide_smallest(members, values, reasons, frozen):
                widened = True
                break
    return widened


def _follow_n(layout: Layout, reasons: list[str | None]) -> None:
    n_reason: dict[tuple[str, tuple[str, ...]], str | None] = {}
    for i, cell in enumerate(layout.cells):
        if cell.part == "n":
            n_reason[(cell.statistic, cell.labels)] = reasons[i]
    for i, cell in enumerate(layout.cells):
        hidden_n = n_reason.get((cell.statistic, cell.labels)) is not None
        if cell.part in ("sum", "sumsq") and reasons[i] is None and hidden_n:
            reasons[i] = FOLLOWS_N
