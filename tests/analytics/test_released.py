"""Disclosure control across the answers of an analysis session, attacked: a cell hidden in
one answer cannot be recovered by asking its partners in later answers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from medspace.analytics import QuerySpec, layout, protect, released
from medspace.analytics.disclosure import BELOW_MIN_CELL, EMPTY_BY_ZERO, FOLLOWS_N
from medspace.analytics.layout import Layout
from medspace.analytics.released import EARLIER_ANSWERS, ReleaseRecord

K = 5
VARIABLES: dict[str, Any] = {
    "sex": {"kind": "sex"},
    "hba1c": {"kind": "measurement", "system": "LOINC", "code": "4548-4"},
}
PATIENTS = {"female": 3, "male": 60}  # the cohort: 3 women, 60 men


def _answer(*statistics: dict[str, Any]) -> QuerySpec:
    return QuerySpec.parse({"variables": VARIABLES, "statistics": list(statistics)})


BY_SEX = _answer({"id": "by_sex", "kind": "count", "by": ["sex"]})
TOTAL = _answer({"id": "total", "kind": "count"})


def _values(cells: Layout) -> list[float]:
    """The node's true cell values for the cohort above (counts only)."""
    values = []
    for cell in cells.cells:
        conditions = dict(cell.population)
        if "sex" in conditions:
            values.append(float(PATIENTS[conditions["sex"]]))
        else:
            values.append(float(sum(PATIENTS.values())))
    return values


def _shown(cells: Layout, reasons: list[str | None]) -> dict[tuple[str, ...], float]:
    values = _values(cells)
    return {c.labels: values[i] for i, c in enumerate(cells.cells) if reasons[i] is None}


def test_without_the_record_two_answers_give_away_a_hidden_cell() -> None:
    """The attack the record exists for: one answer hides the 3 women, the next shows
    the total, and total minus men is the women."""
    first = layout(BY_SEX)
    first_reasons = protect(first, _values(first), K)
    assert first_reasons == [BELOW_MIN_CELL, None]  # female hidden, male shown
    second = layout(TOTAL)
    second_reasons = protect(second, _values(second), K)
    men = _shown(first, first_reasons)[("male",)]
    total = _shown(second, second_reasons)[()]
    assert total - men == PATIENTS["female"]


def test_with_the_record_the_total_that_would_give_it_away_is_hidden() -> None:
    record = ReleaseRecord()
    first = layout(BY_SEX)
    assert record.protect(first, _values(first), K) == [BELOW_MIN_CELL, None]
    second = layout(TOTAL)
    reasons = record.protect(second, _values(second), K)
    assert reasons[0] is not None  # the total stays hidden: women = total - men is blocked
    # Asked again, it is hidden again; and so is anything else that adds up to it.
    assert record.protect(second, _values(second), K)[0] is not None


def test_asking_the_same_statistics_again_hides_nothing_more() -> None:
    record = ReleaseRecord()
    cells = layout(BY_SEX)
    first = record.protect(cells, _values(cells), K)
    for _ in range(3):
        assert record.protect(cells, _values(cells), K) == first


def test_an_answer_asked_again_is_not_solved_again_until_the_record_grows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    solved: list[int] = []
    real = released.protect

    def counting(*args: Any, **kwargs: Any) -> list[str | None]:
        solved.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(released, "protect", counting)
    record = ReleaseRecord()
    cells = layout(BY_SEX)
    first = record.protect(cells, _values(cells), K)  # grows the record: solved
    again = record.protect(cells, _values(cells), K)  # checked against the grown record
    assert len(solved) == 2 and again == first
    assert record.protect(cells, _values(cells), K) == first
    assert len(solved) == 2  # the same answer against the same record: remembered
    total = layout(_answer({"id": "n", "kind": "count"}))
    record.protect(total, [63.0], K)  # grows the record again
    assert record.protect(cells, _values(cells), K) == first
    assert len(solved) == 4  # solved again against the grown record


def test_a_later_answer_hides_its_own_cells_not_the_ones_already_shown() -> None:
    """The total was shown first; counting by sex later must hide the men too (else the
    women follow from the total), and the total stays what it was."""
    record = ReleaseRecord()
    total = layout(TOTAL)
    assert record.protect(total, _values(total), K) == [None]
    by_sex = layout(BY_SEX)
    reasons = record.protect(by_sex, _values(by_sex), K)
    assert reasons[0] == BELOW_MIN_CELL and reasons[1] is not None  # both sexes hidden


def test_a_small_mean_after_the_cohort_size_is_hidden_like_in_one_query() -> None:
    """The cohort's size was shown; a mean of HbA1c over the 3 patients who have one is
    hidden (n below k, its sum follows), exactly as in one query asking both."""
    record = ReleaseRecord()
    total = layout(TOTAL)
    record.protect(total, _values(total), K)
    mean = layout(_answer({"id": "hba1c", "kind": "mean", "variable": "hba1c"}))
    reasons = record.protect(mean, [3.0, 21.0], K)  # n = 3 with a value, their sum
    assert reasons == [BELOW_MIN_CELL, FOLLOWS_N]


def test_an_answer_that_would_still_expose_a_cell_is_withheld_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The safety net: should `protect` leave a hidden cell recomputable with the new
    answer's help, nothing of the answer is released."""
    record = ReleaseRecord()
    first = layout(BY_SEX)
    record.protect(first, _values(first), K)
    calls: list[list[str | None]] = []

    def detector(combined: Layout, reasons: list[str | None], values: list[float]) -> list[int]:
        calls.append(list(reasons))
        return [0] if len(calls) == 1 else []  # exposed with the answer, not without it

    monkeypatch.setattr(released, "exposed_cells", detector)
    again = layout(BY_SEX)  # alone, it would show the men again
    assert record.protect(again, _values(again), K) == [BELOW_MIN_CELL, EARLIER_ANSWERS]


def test_the_record_is_only_what_was_released() -> None:
    record = ReleaseRecord()
    assert len(record) == 0
    cells = layout(BY_SEX)
    record.protect(cells, _values(cells), K)
    assert len(record) == 2  # two populations: female (hidden), male (shown)


# --- any sequence of answers, attacked with everything the session showed ------------

BANDS = [{"label": f"b{i}", "min": 20 * i, "max": 20 * i + 19} for i in range(3)]
GRID_VARIABLES: dict[str, Any] = {
    "sex": {"kind": "sex"},
    "band": {"kind": "age_band", "bands": BANDS},
}
MENU = [
    [{"id": "total", "kind": "count"}],
    [{"id": "by_sex", "kind": "count", "by": ["sex"]}],
    [{"id": "by_band", "kind": "count", "by": ["band"]}],
    [{"id": "t", "kind": "table", "variables": ["sex", "band"]}],
    [{"id": "both", "kind": "count", "by": ["sex", "band"]}],
    [{"id": "s", "kind": "table", "variables": ["sex"]}],
]
SEXES = ("female", "male")


def _grid_values(cells: Layout, grid: list[list[int]]) -> list[float]:
    values = []
    for cell in cells.cells:
        conditions = dict(cell.population)
        values.append(
            float(
                sum(
                    grid[s][b]
                    for s, sex in enumerate(SEXES)
                    for b in range(len(BANDS))
                    if conditions.get("sex", sex) == sex
                    and conditions.get("band", f"b{b}") == f"b{b}"
                )
            )
        )
    return values


def _atom_row(population: tuple[tuple[str, str], ...]) -> np.ndarray:
    conditions = dict(population)
    return np.array(
        [
            float(conditions.get("sex", sex) == sex and conditions.get("band", f"b{b}") == f"b{b}")
            for sex in SEXES
            for b in range(len(BANDS))
        ]
    )


def _determined(target: np.ndarray, shown: list[np.ndarray], zeros: list[np.ndarray]) -> bool:
    """The attacker's algebra, written here: counts are never negative, so the atoms of
    a shown zero hold nobody; is the target's row over the other atoms a combination of
    the shown rows?"""
    empty = np.zeros(len(target), dtype=bool)
    for zero in zeros:
        empty |= zero > 0
    target = target[~empty]
    if not shown or not target.any():
        return False
    matrix = np.vstack(shown)[:, ~empty]
    solution, *_ = np.linalg.lstsq(matrix.T, target, rcond=None)
    return bool(np.abs(matrix.T @ solution - target).max() < 1e-7)


@settings(deadline=None, max_examples=150)
@given(
    grid=st.lists(
        st.lists(st.integers(0, 12), min_size=len(BANDS), max_size=len(BANDS)),
        min_size=2,
        max_size=2,
    ),
    asks=st.lists(st.integers(0, len(MENU) - 1), min_size=1, max_size=6),
)
@example(grid=[[0, 0, 5], [0, 1, 1]], asks=[1, 5, 1, 3, 2])  # zeros shown earlier empty atoms
@example(grid=[[12, 5, 1], [0, 12, 3]], asks=[4, 5, 2])  # a small group known before asked
def test_no_small_cell_of_any_answer_follows_from_all_answers_shown(
    grid: list[list[int]], asks: list[int]
) -> None:
    record = ReleaseRecord()
    shown: list[np.ndarray] = []
    zeros: list[np.ndarray] = []
    small: list[np.ndarray] = []
    for choice in asks:
        spec = QuerySpec.parse({"variables": GRID_VARIABLES, "statistics": MENU[choice]})
        cells = layout(spec)
        values = _grid_values(cells, grid)
        # A group the earlier answers already pin down (two hidden cells whose sum a
        # shown margin gives, asked later as one cell) is not this answer's to protect:
        # disclosure control protects the cells an answer shows or hides, as in one query.
        known = [_determined(_atom_row(c.population), shown, zeros) for c in cells.cells]
        reasons = record.protect(cells, values, K)
        for cell, value, reason, was_known in zip(cells.cells, values, reasons, known, strict=True):
            if reason is None:
                shown.append(_atom_row(cell.population))
                if value == 0:
                    zeros.append(_atom_row(cell.population))
            elif 0 < value < K and not was_known:
                small.append(_atom_row(cell.population))
    for target in small:
        assert not _determined(target, shown, zeros)


def test_a_zero_from_patients_with_a_value_does_not_say_a_group_is_empty() -> None:
    """The decoy: 'mean of a lab nobody has, by sex' shows n = 0 for both sexes. That says
    nobody has the lab, not that nobody is a woman; read as 'no women', it made the 3
    hidden women look empty, so the total (63, with 60 men) was shown."""
    record = ReleaseRecord()
    first = layout(BY_SEX)
    assert record.protect(first, _values(first), K) == [BELOW_MIN_CELL, None]
    decoy = layout(_answer({"id": "decoy", "kind": "mean", "variable": "hba1c", "by": ["sex"]}))
    record.protect(decoy, [0.0] * len(decoy), K)  # nobody has the lab
    second = layout(TOTAL)
    assert record.protect(second, _values(second), K)[0] is not None
    assert ((("sex", "female"),), False) in [
        (pop, shown) for pop, shown in record._cells.items()
    ]  # still recorded hidden


def test_in_one_query_a_decoy_zero_does_not_unlock_a_hidden_cell() -> None:
    """count, count by sex and diabetes (3 women without diabetes hidden), and the mean
    of a lab nobody has: without the decoy the total is hidden; with it, it must be too
    (93 - 20 - 30 - 40 would give the 3)."""
    dm = {"kind": "has", "domain": "condition", "system": "ICD-10", "code": "E11.9"}
    spec = QuerySpec.parse(
        {
            "variables": {**VARIABLES, "dm": dm},
            "statistics": [
                {"id": "n", "kind": "count"},
                {"id": "grid", "kind": "count", "by": ["sex", "dm"]},
                {"id": "decoy", "kind": "mean", "variable": "hba1c"},
            ],
        }
    )
    cells = layout(spec)
    grid = {c.labels: i for i, c in enumerate(cells.cells) if c.statistic == "grid"}
    values = [0.0] * len(cells)
    values[0] = 93.0
    for labels, count in {("female", "0"): 3, ("female", "1"): 20, ("male", "0"): 30}.items():
        values[grid[labels]] = float(count)
    values[grid[("male", "1")]] = 40.0
    reasons = protect(cells, values, K)
    assert reasons[grid[("female", "0")]] == BELOW_MIN_CELL
    assert reasons[0] is not None or any(
        reasons[i] is not None for i in grid.values() if i != grid[("female", "0")]
    )


def test_a_decoy_asked_first_does_not_mark_the_group_shown() -> None:
    """'Mean of a lab nobody has, by sex' first (n = 0 for women), then 'count by sex' (3
    women hidden), then 'count': the 0 said nothing about how many women there are, so
    the total stays hidden."""
    record = ReleaseRecord()
    decoy = layout(_answer({"id": "decoy", "kind": "mean", "variable": "hba1c", "by": ["sex"]}))
    record.protect(decoy, [0.0] * len(decoy), K)
    first = layout(BY_SEX)
    assert record.protect(first, _values(first), K)[0] == BELOW_MIN_CELL
    second = layout(TOTAL)
    assert record.protect(second, _values(second), K)[0] is not None


@pytest.mark.parametrize(
    "decoy",
    [
        {"id": "d", "kind": "histogram", "variable": "hba1c", "edges": [0, 1]},
        {"id": "d", "kind": "table", "variables": ["band"]},
        {"id": "d", "kind": "count", "by": ["band"]},
    ],
)
def test_zeros_in_every_category_of_a_variable_nobody_has_do_not_empty_the_cohort(
    decoy: dict[str, Any],
) -> None:
    """Every bin or band 0 reads, in a model where everyone has a value, as 'nobody at
    all': the hidden 3 women would seem to hold nobody and the total would be shown. The
    answer is withheld instead (in one query, and after 'count by sex')."""
    band = {"kind": "age_band", "bands": [{"label": "old", "min": 150, "max": 200}]}
    variables = {**VARIABLES, "band": band}

    def spec(*statistics: dict[str, Any]) -> QuerySpec:
        return QuerySpec.parse({"variables": variables, "statistics": list(statistics)})

    def values(cells: Layout) -> list[float]:
        out = []
        for cell in cells.cells:
            conditions = dict(cell.population)
            if cell.statistic == "d" or not cell.count:
                out.append(0.0)  # nobody has the lab, nobody is 150
            elif "sex" in conditions:
                out.append(float(PATIENTS[conditions["sex"]]))
            else:
                out.append(float(sum(PATIENTS.values())))
        return out

    together = layout(spec({"id": "n", "kind": "count"}, BY_SEX.statistics[0].model_dump(), decoy))
    reasons = protect(together, values(together), K)
    assert all(r is not None for r, c in zip(reasons, together.cells, strict=True) if c.count)
    assert EMPTY_BY_ZERO in reasons
    record = ReleaseRecord()
    first = layout(BY_SEX)
    assert record.protect(first, _values(first), K) == [BELOW_MIN_CELL, None]
    record.protect(layout(spec(decoy)), values(layout(spec(decoy))), K)
    assert record.protect(layout(TOTAL), [63.0], K)[0] is not None
