"""The attacker's model of a query: every count cell is a sum over *atoms*.

An atom is one combination of a category of every variable the query's count cells
condition on (age band x sex x diabetes ...). Each count cell adds up the patients of
the atoms that meet its conditions, so the shown cells are linear equations in the
atom counts, and a hidden cell is recomputable exactly when its row of atoms lies in
the row space of the shown cells' rows — whatever statistics the rows come from, and
including what zeros reveal ("nobody young is male", "nobody old has dm = 0", ... can
pin down a hidden "young female"). A count cannot be negative, so a zero shown is more
than one equation: every atom it adds up is empty. Those atoms are taken out of the
model (`empty_atoms`) before the span is checked.

Conservative by construction: every patient is assumed to have a value of every
variable (a cell "patients with an HbA1c" is treated as "patients"), which only adds
equations. Used by `disclosure.protect` when the atoms number at most `MAX_ATOMS`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from medspace.analytics.layout import Layout

MAX_ATOMS = 4096
Rows = npt.NDArray[np.float64]


def atom_rows(layout: Layout) -> Rows | None:
    """One row per layout cell (zeros for value cells): 1 for each atom the cell adds
    up. None when the query has more than `MAX_ATOMS` atoms."""
    variables = sorted(
        {
            layout.indicators.get(name, (name, ""))[0]
            for cell in layout.cells
            if cell.count
            for name, _ in cell.population
        }
    )
    sizes = [len(layout.domains[v]) for v in variables]
    if math.prod(sizes) > MAX_ATOMS:
        return None
    grid = np.indices(sizes).reshape(len(variables), -1) if variables else np.zeros((0, 1))
    column = {v: j for j, v in enumerate(variables)}
    rows = np.zeros((len(layout.cells), grid.shape[1]))
    for i, cell in enumerate(layout.cells):
        if not cell.count:
            continue
        mask = np.ones(grid.shape[1], dtype=bool)
        for name, category in cell.population:
            if name in layout.indicators:
                parent, indicated = layout.indicators[name]
                hit = grid[column[parent]] == layout.domains[parent].index(indicated)
                mask &= hit if category == "1" else ~hit
            else:
                mask &= grid[column[name]] == layout.domains[name].index(category)
        rows[i] = mask
    return rows


def empty_atoms(rows: Rows, zeros: Sequence[int]) -> npt.NDArray[np.bool_]:
    """The atoms that shown cells of count 0 add up: each is known to hold nobody."""
    empty = np.zeros(rows.shape[1], dtype=bool)
    for z in zeros:
        empty |= rows[z] != 0
    return empty


def without_empty(rows: Rows, zeros: Sequence[int]) -> Rows:
    """The rows with the atoms of the shown zeros taken out (known to be 0)."""
    if not zeros:
        return rows
    return rows[:, ~empty_atoms(rows, zeros)]


def exposed(
    rows: Rows, hidden: Sequence[int], shown: Sequence[int], zeros: Sequence[int] = ()
) -> list[int]:
    """The hidden cells whose atom rows lie in the span of the shown cells' rows, once
    the atoms of the shown cells of count 0 (`zeros`, a subset of `shown`) are known to
    be empty.

    A cell with no atom left (contradictory conditions, e.g. "male = 1" and "sex =
    female", or only atoms a shown zero empties) holds nobody: there is nothing in it to
    protect, so it is never reported (noise added under differential privacy can make
    such a cell look small)."""
    rows = without_empty(rows, zeros)
    hidden = [h for h in hidden if rows[h].any()]
    if not hidden:
        return []
    targets = rows[list(hidden)]
    if not shown:
        return list(hidden)
    _, singular, vt = np.linalg.svd(rows[list(shown)], full_matrices=False)
    basis = vt[singular > 1e-9 * max(1.0, float(singular[0]))]
    residual = targets - (targets @ basis.T) @ basis
    return [h for h, r in zip(hidden, residual, strict=True) if np.abs(r).max() < 1e-7]


def helpers(
    rows: Rows, targets: Sequence[int], shown: Sequence[int], zeros: Sequence[int] = ()
) -> list[list[int]]:
    """For each target, the shown cells an attacker combines to recompute it (non-zero
    least-squares coefficients; one solve for all targets), with the atoms of the shown
    zeros known to be empty (`exposed`)."""
    rows = without_empty(rows, zeros)
    if not targets or not shown:
        return [[] for _ in targets]
    solution, *_ = np.linalg.lstsq(rows[list(shown)].T, rows[list(targets)].T, rcond=None)
    return [
        [s for s, c in zip(shown, solution[:, t], strict=True) if abs(c) > 1e-9]
        for t in range(len(targets))
    ]
