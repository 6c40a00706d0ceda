"""Disclosure control, attacked: small cells are hidden, and no hidden cell can be
recomputed from the cells shown, by margins or by any linear combination."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from medspace.analytics import QuerySpec, atoms, layout, protect
from medspace.analytics.atoms import atom_rows, exposed
from medspace.analytics.disclosure import BELOW_MIN_CELL, COMPLEMENTARY, FOLLOWS_N
from medspace.analytics.layout import Layout

K = 5


def _table_spec(rows: int, cols: int, extra: list[dict[str, Any]] | None = None) -> QuerySpec:
    bands = [{"label": f"r{i}", "min": 10 * i, "max": 10 * i + 9} for i in range(rows)]
    cats = [{"label": f"c{j}", "codes": [{"system": "S", "code": f"v{j}"}]} for j in range(cols)]
    return QuerySpec.parse(
        {
            "variables": {
                "band": {"kind": "age_band", "bands": bands},
                "obs": {
                    "kind": "observation_category",
                    "system": "S",
                    "code": "o",
                    "categories": cats,
                },
                "sex": {"kind": "sex"},
                "x": {"kind": "age"},
            },
            "statistics": [
                {"id": "t", "kind": "table", "variables": ["band", "obs"]},
                *(extra or []),
            ],
        }
    )


def _table_vector(cells: Layout, grid: np.ndarray) -> list[float]:
    """Values of the table statistic `t` for an inner grid (margins computed)."""
    values = [0.0] * len(cells)
    for i, cell in enumerate(cells.cells):
        if cell.statistic != "t":
            continue
        a, b = cell.labels
        rows = range(grid.shape[0]) if a == "all" else [int(a[1:])]
        cols = range(grid.shape[1]) if b == "all" else [int(b[1:])]
        values[i] = float(sum(grid[r, c] for r in rows for c in cols))
    return values


def _table_equations(cells: Layout, rows: int, cols: int) -> list[tuple[int, list[int]]]:
    """The attacker's equations, written from the table's structure (not the library's)."""
    at = {c.labels: i for i, c in enumerate(cells.cells) if c.statistic == "t"}
    eqs = []
    for r in range(rows):
        eqs.append((at[(f"r{r}", "all")], [at[(f"r{r}", f"c{c}")] for c in range(cols)]))
    for c in range(cols):
        eqs.append((at[("all", f"c{c}")], [at[(f"r{r}", f"c{c}")] for r in range(rows)]))
    eqs.append((at[("all", "all")], [at[(f"r{r}", "all")] for r in range(rows)]))
    eqs.append((at[("all", "all")], [at[("all", f"c{c}")] for c in range(cols)]))
    return eqs


def _margin_attack(eqs: list[tuple[int, list[int]]], hidden: set[int]) -> set[int]:
    """Cells an attacker recovers by repeatedly solving equations with one unknown."""
    unknown = set(hidden)
    changed = True
    while changed:
        changed = False
        for total, parts in eqs:
            left = [m for m in (total, *parts) if m in unknown]
            if len(left) == 1:
                unknown.discard(left[0])
                changed = True
    return hidden - unknown


def _linear_attack(eqs: list[tuple[int, list[int]]], hidden: set[int]) -> set[int]:
    """Cells determined by some linear combination of the equations (rank test)."""
    unknowns = sorted(hidden)
    if not unknowns:
        return set()
    col = {u: j for j, u in enumerate(unknowns)}
    rows = []
    for total, parts in eqs:
        row = np.zeros(len(unknowns))
        for m, sign in ((total, 1.0), *((p, -1.0) for p in parts)):
            if m in col:
                row[col[m]] += sign
        rows.append(row)
    a = np.array(rows)
    rank = np.linalg.matrix_rank(a)
    found = set()
    for u in unknowns:
        unit = np.zeros(len(unknowns))
        unit[col[u]] = 1
        if np.linalg.matrix_rank(np.vstack([a, unit])) == rank:
            found.add(u)
    return found


def test_small_cell_is_suppressed_and_zero_is_kept() -> None:
    spec = _table_spec(2, 2)
    cells = layout(spec)
    grid = np.array([[0, 3], [20, 30]])
    reasons = protect(cells, _table_vector(cells, grid), K)
    by_label = {c.labels: r for c, r in zip(cells.cells, reasons, strict=True)}
    assert by_label[("r0", "c1")] == BELOW_MIN_CELL
    assert by_label[("r0", "c0")] is None  # a zero is shown
    # r0's margin equals the hidden 3 (0 + 3): it must go too, and so must something
    # that would give it back through the column and the total
    assert by_label[("r0", "all")] is not None


def test_a_lone_suppressed_cell_gets_a_complement_in_its_row_and_column() -> None:
    spec = _table_spec(3, 3)
    cells = layout(spec)
    grid = np.array([[2, 30, 40], [25, 35, 45], [50, 60, 70]])
    values = _table_vector(cells, grid)
    reasons = protect(cells, values, K)
    hidden = {i for i, r in enumerate(reasons) if r}
    assert COMPLEMENTARY in reasons
    eqs = _table_equations(cells, 3, 3)
    assert not _margin_attack(eqs, hidden)
    assert not _linear_attack(eqs, hidden)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 5).flatmap(
        lambda r: st.integers(2, 5).flatmap(
            lambda c: st.lists(st.integers(0, 12), min_size=r * c, max_size=r * c).map(
                lambda v: np.array(v).reshape(r, c)
            )
        )
    )
)
def test_no_suppressed_cell_of_any_table_can_be_recomputed(grid: np.ndarray) -> None:
    rows, cols = grid.shape
    spec = _table_spec(rows, cols)
    cells = layout(spec)
    values = _table_vector(cells, grid)
    reasons = protect(cells, values, K)
    hidden = {i for i, r in enumerate(reasons) if r}
    for i, cell in enumerate(cells.cells):
        if 0 < values[i] < K:
            assert i in hidden, cell
    eqs = _table_equations(cells, rows, cols)
    assert not _linear_attack(eqs, hidden)


def test_a_bridge_between_two_suppression_cycles_is_widened() -> None:
    # Two 2x2 cycles of suppressed cells joined by one more cell: every row and column
    # holds two suppressed cells, yet the bridge cell is the difference of row and
    # column sums. Margin-by-margin suppression misses it; the exact check must not.
    spec = _table_spec(4, 4)
    cells = layout(spec)
    grid = np.full((4, 4), 20)
    values = _table_vector(cells, grid)
    at = {c.labels: i for i, c in enumerate(cells.cells)}
    pattern = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (2, 3), (3, 2), (3, 3), (0, 2)]
    already: list[str | None] = [None] * len(cells)
    for r, c in pattern:
        already[at[(f"r{r}", f"c{c}")]] = "test"
    eqs = _table_equations(cells, 4, 4)
    before = {i for i, r in enumerate(already) if r}
    assert _linear_attack(eqs, before)  # the pattern is unsafe as given
    reasons = protect(cells, values, K, already=already)
    after = {i for i, r in enumerate(reasons) if r}
    assert after > before
    assert not _linear_attack(eqs, after)


def test_a_small_group_cannot_be_recovered_from_a_total_in_another_statistic() -> None:
    # count by sex (female = 3 hidden) next to the cohort count: male = total - female
    # would give it away, so the male count must be hidden too.
    spec = _table_spec(
        2,
        2,
        [{"id": "n", "kind": "count"}, {"id": "by_sex", "kind": "count", "by": ["sex"]}],
    )
    cells = layout(spec)
    values = _table_vector(cells, np.array([[10, 10], [10, 13]]))
    at = {(c.statistic, c.labels): i for i, c in enumerate(cells.cells)}
    values[at[("n", ())]] = 43
    values[at[("by_sex", ("female",))]] = 3
    values[at[("by_sex", ("male",))]] = 40
    reasons = protect(cells, values, K)
    assert reasons[at[("by_sex", ("female",))]] == BELOW_MIN_CELL
    assert reasons[at[("by_sex", ("male",))]] is not None or reasons[at[("n", ())]] is not None


def test_sums_follow_their_n() -> None:
    spec = _table_spec(2, 2, [{"id": "m", "kind": "variance", "variable": "x", "by": ["sex"]}])
    cells = layout(spec)
    values = _table_vector(cells, np.array([[10, 10], [10, 10]]))
    at = {(c.statistic, c.labels, c.part): i for i, c in enumerate(cells.cells)}
    for part, value in (("n", 2), ("sum", 100.0), ("sumsq", 5200.0)):
        values[at[("m", ("female",), part)]] = value
    for part, value in (("n", 30), ("sum", 1500.0), ("sumsq", 80000.0)):
        values[at[("m", ("male",), part)]] = value
    reasons = protect(cells, values, K)
    assert reasons[at[("m", ("female",), "n")]] == BELOW_MIN_CELL
    assert reasons[at[("m", ("female",), "sum")]] == FOLLOWS_N
    assert reasons[at[("m", ("female",), "sumsq")]] == FOLLOWS_N


def test_proportion_yes_no_and_n_protect_each_other() -> None:
    spec = QuerySpec.parse(
        {
            "variables": {"dm": {"kind": "has", "domain": "condition", "system": "I", "code": "E"}},
            "statistics": [{"id": "p", "kind": "proportion", "variable": "dm"}],
        }
    )
    cells = layout(spec)
    parts = [c.part for c in cells.cells]
    for yes, no in itertools.product([0, 2, 9, 40], repeat=2):
        values = [0.0] * len(cells)
        values[parts.index("yes")], values[parts.index("no")] = yes, no
        values[parts.index("n")] = yes + no
        reasons = protect(cells, values, K)
        hidden = sum(r is not None for r in reasons)
        assert hidden != 1, (yes, no)  # one hidden member of yes + no = n is recomputable
        if 0 < yes < K or 0 < no < K:
            assert hidden >= 2


BANDS = ("young", "middle", "old")
SEXES = ("female", "male")
ATOMS = [(b, s, d) for b in BANDS for s in SEXES for d in ("0", "1")]
MIXED = QuerySpec.parse(
    {
        "variables": {
            "band": {
                "kind": "age_band",
                "bands": [
                    {"label": "young", "min": 0, "max": 39},
                    {"label": "middle", "min": 40, "max": 59},
                    {"label": "old", "min": 60, "max": 200},
                ],
            },
            "sex": {"kind": "sex"},
            "dm": {"kind": "has", "domain": "condition", "system": "ICD-10", "code": "E11*"},
            "male": {"kind": "is", "of": "sex", "category": "male"},
        },
        "statistics": [
            {"id": "all", "kind": "count"},
            {"id": "by_sex", "kind": "count", "by": ["sex"]},
            {"id": "by_band_sex", "kind": "count", "by": ["band", "sex"]},
            {"id": "band_dm", "kind": "table", "variables": ["band", "dm"]},
            {"id": "dm_rate", "kind": "proportion", "variable": "dm", "by": ["sex"]},
            {"id": "male_share", "kind": "proportion", "variable": "male", "by": ["band"]},
        ],
    }
)


def _atoms_of(cell_stat: str, labels: tuple[str, ...], part: str) -> set[int]:
    """Which (band, sex, dm) atoms a count cell adds up, written from the statistics'
    meaning (independently of the library's populations)."""
    want: dict[str, str] = {}
    if cell_stat == "by_sex":
        want = {"sex": labels[0]}
    elif cell_stat == "by_band_sex":
        want = {"band": labels[0], "sex": labels[1]}
    elif cell_stat == "band_dm" and labels != ("all", "all"):
        want = {k: v for k, v in zip(("band", "dm"), labels, strict=True) if v != "all"}
    elif cell_stat == "dm_rate":
        want = {"sex": labels[0]}
        if part in ("yes", "no"):
            want["dm"] = "1" if part == "yes" else "0"
    elif cell_stat == "male_share":
        want = {"band": labels[0]}
        if part in ("yes", "no"):
            want["sex"] = "male" if part == "yes" else "female"
    index = {"band": 0, "sex": 1, "dm": 2}
    return {i for i, atom in enumerate(ATOMS) if all(atom[index[k]] == v for k, v in want.items())}


ZEROS_EMPTY_ATOMS = [0, 0, 5, 0, 0, 5, 0, 5, 9, 1, 0, 0]
"""Counts per (band, sex, dm) atom under which the linear model alone left a hidden cell
("young men") recomputable: "nobody old is male" and other shown zeros empty atoms that
no single equation isolates (found by a random search against the attacker below)."""


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=len(ATOMS), max_size=len(ATOMS)))
@example(ZEROS_EMPTY_ATOMS)
@example([0, 0, 9, 0, 0, 1, 0, 2, 3, 0, 3, 0])
def test_no_cell_is_recomputable_from_all_statistics_of_a_query(counts: list[int]) -> None:
    # The attacker's model: every count cell is a sum of patients in (band, sex, dm)
    # atoms, and no atom is negative, so a shown zero empties each of its atoms. A
    # hidden cell is exposed when its row of the remaining atoms lies in the row space
    # of the shown cells' rows (all statistics of the query together).
    cells = layout(MIXED)
    rows = []
    for cell in cells.cells:
        row = np.zeros(len(ATOMS))
        row[list(_atoms_of(cell.statistic, cell.labels, cell.part))] = 1
        rows.append(row)
    values = [float(row @ np.array(counts)) for row in rows]
    reasons = protect(cells, values, K)
    shown_at = [i for i, r in enumerate(reasons) if r is None]
    empty = np.zeros(len(ATOMS), dtype=bool)
    for i in shown_at:
        if values[i] == 0:
            empty |= rows[i] > 0
    left = [row[~empty] for row in rows]
    shown = np.array([left[i] for i in shown_at])
    rank = np.linalg.matrix_rank(shown) if len(shown) else 0
    for i, reason in enumerate(reasons):
        if 0 < values[i] < K:
            assert reason is not None
        if reason is not None and values[i] > 0:
            stacked = np.vstack([shown, left[i]]) if len(shown) else left[i][None, :]
            assert np.linalg.matrix_rank(stacked) > rank, (cells.cells[i], values[i])


def test_a_shown_zero_empties_every_atom_it_adds_up(monkeypatch: pytest.MonkeyPatch) -> None:
    # A count is never negative: with the zeros of these counts shown, the linear
    # equations alone do not give the hidden "young men", but zeros taken as emptied
    # atoms do; the check must hide one more cell than the linear model asks for.
    cells = layout(MIXED)
    values = [
        float(sum(ZEROS_EMPTY_ATOMS[a] for a in _atoms_of(c.statistic, c.labels, c.part)))
        for c in cells.cells
    ]
    at = {(c.statistic, c.labels, c.part): i for i, c in enumerate(cells.cells)}
    young_men = at[("by_band_sex", ("young", "male"), "n")]
    reasons = protect(cells, values, K)
    assert reasons[young_men] is not None
    counts = [i for i, c in enumerate(cells.cells) if c.count]
    hidden = [i for i in counts if reasons[i] is not None]
    shown = [i for i in counts if reasons[i] is None]
    zeros = [i for i in shown if values[i] == 0]
    rows = atom_rows(cells)
    assert rows is not None
    assert exposed(rows, hidden, shown, zeros) == []
    # what the linear model alone would have left: "young men" recomputable through zeros
    with monkeypatch.context() as linear_only:
        linear_only.setattr(atoms, "without_empty", lambda rows, zeros: rows)
        linear = protect(cells, values, K)
    linear_hidden = [i for i in counts if linear[i] is not None]
    linear_shown = [i for i in counts if linear[i] is None]
    linear_zeros = [i for i in linear_shown if values[i] == 0]
    assert young_men in exposed(rows, linear_hidden, linear_shown, linear_zeros)


def test_a_structurally_empty_cell_does_not_cascade() -> None:
    # "male = 1" x "sex = female" can hold nobody; DP noise may still make it look small
    spec = QuerySpec.parse(
        {
            "variables": {
                "sex": {"kind": "sex"},
                "male": {"kind": "is", "of": "sex", "category": "male"},
            },
            "statistics": [{"id": "t", "kind": "table", "variables": ["sex", "male"]}],
        }
    )
    cells = layout(spec)
    at = {c.labels: i for i, c in enumerate(cells.cells)}
    values = [0.0] * len(cells)
    for labels, value in {
        ("female", "0"): 40,
        ("female", "1"): 2,  # impossible: noise
        ("male", "0"): 0,
        ("male", "1"): 60,
        ("female", "all"): 42,
        ("male", "all"): 60,
        ("all", "0"): 40,
        ("all", "1"): 62,
        ("all", "all"): 102,
    }.items():
        values[at[labels]] = float(value)
    reasons = protect(cells, values, K)
    assert reasons[at[("female", "1")]] == BELOW_MIN_CELL
    assert sum(r is not None for r in reasons) < len(cells)


def test_a_zero_inside_a_group_of_fewer_than_k_patients_is_hidden() -> None:
    # "r1 (one patient), c0: 0" beside a hidden "r1, c1: 1" would say that patient's
    # category is c1. The zeros of a group holding 1 to k - 1 patients are hidden.
    from medspace.analytics.disclosure import ZERO_IN_SMALL_GROUP, zeros_in_small_groups

    spec = _table_spec(3, 2)
    cells = layout(spec)
    grid = np.array([[9, 7], [0, 1], [0, 0]])  # r1 holds one patient, r2 none
    values = _table_vector(cells, grid)
    marks = zeros_in_small_groups(cells, values, K)
    hidden = {cells.cells[i].labels for i, mark in enumerate(marks) if mark}
    assert hidden == {("r1", "c0")}  # r2's zeros describe nobody: they stay shown
    assert all(m in (None, ZERO_IN_SMALL_GROUP) for m in marks)
    reasons = protect(cells, values, K, already=marks)
    shown = {cells.cells[i].labels for i, r in enumerate(reasons) if r is None}
    assert ("r1", "c0") not in shown and ("r1", "c1") not in shown
    assert ("r2", "c0") in shown and ("r2", "c1") in shown


def test_a_proportions_zero_in_a_one_patient_band_is_hidden() -> None:
    # "proportion of diabetes by band": in a band of one patient, a shown "no: 0" says
    # she has diabetes. Her band's size comes from the proportion's own n (another part
    # of the statistic), which the zero's group lookup must use.
    from medspace.analytics.disclosure import zeros_in_small_groups

    bands = [{"label": f"r{i}", "min": 10 * i, "max": 10 * i + 9} for i in range(3)]
    spec = QuerySpec.parse(
        {
            "variables": {
                "band": {"kind": "age_band", "bands": bands},
                "dm": {"kind": "has", "domain": "condition", "system": "S", "code": "E11"},
            },
            "statistics": [{"id": "p", "kind": "proportion", "variable": "dm", "by": ["band"]}],
        }
    )
    cells = layout(spec)
    counts = {"r0": (20, 8), "r1": (1, 1), "r2": (30, 0)}  # band: (n, with diabetes)
    values = []
    for cell in cells.cells:
        n, yes = counts[cell.labels[0]]
        values.append(float({"n": n, "yes": yes, "no": n - yes}.get(cell.part, 0)))
    marks = zeros_in_small_groups(cells, values, K)
    marked = {(c.labels[0], c.part) for c, m in zip(cells.cells, marks, strict=True) if m}
    assert marked == {("r1", "no")}  # r2's "yes: 0" is a band of 30: it stays shown
