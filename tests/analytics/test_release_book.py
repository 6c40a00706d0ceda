"""One-shot queries about one cohort are protected together: the node keeps, per
project and cohort, the cells it released (`medspace.analytics.release_book`), so the
classic two-query attack ("count by sex" with the women hidden, then "count") finds the
total hidden. Across restarts, whatever the queries call their variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from medspace.analytics import QuerySpec, compute_local
from medspace.analytics.errors import AnalyticsError
from medspace.analytics.release_book import ReleaseBook
from medspace.node import Node

SEX = {"kind": "sex"}


def _spec(variables: dict[str, Any], statistics: list[dict[str, Any]]) -> QuerySpec:
    return QuerySpec.parse({"variables": variables, "statistics": statistics})


BY_SEX = _spec({"sex": SEX}, [{"id": "by_sex", "kind": "count", "by": ["sex"]}])
TOTAL = _spec({}, [{"id": "n", "kind": "count"}])
TABLE_AS_S = _spec({"s": SEX}, [{"id": "t", "kind": "table", "variables": ["s"]}])


def _k(node: Node) -> int:
    """A minimum cell size that hides the smaller sex and shows the larger."""
    counts = compute_local(node.store, BY_SEX, min_cell_size=1).values
    assert counts[0] != counts[1], "the simulated hospital needs unequal sexes"
    return int(min(counts)) + 1


def _ask(
    node: Node, book: ReleaseBook | None, spec: QuerySpec, k: int, project: str = "p"
) -> list[str | None]:
    if book is None:
        return compute_local(node.store, spec, min_cell_size=k).suppressed
    cleared = lambda ids: book.record(project, ids)  # noqa: E731
    return compute_local(node.store, spec, min_cell_size=k, cleared=cleared).suppressed


def test_without_a_record_the_total_gives_the_hidden_sex_away(opened: list[Node]) -> None:
    node = opened[0]
    k = _k(node)
    assert sum(r is not None for r in _ask(node, None, BY_SEX, k)) == 1  # one sex hidden
    assert _ask(node, None, TOTAL, k) == [None]  # total - shown sex = the hidden one


def test_a_later_query_about_the_cohort_hides_what_would_give_a_cell_away(
    opened: list[Node], tmp_path: Path
) -> None:
    node = opened[0]
    k = _k(node)
    book = ReleaseBook(tmp_path / "analytics.db")
    first = _ask(node, book, BY_SEX, k)
    assert sum(r is not None for r in first) == 1
    assert _ask(node, book, TOTAL, k) != [None]
    assert _ask(node, book, BY_SEX, k) == first  # asked again: the same answer


def test_variables_are_matched_by_definition_not_by_name(
    opened: list[Node], tmp_path: Path
) -> None:
    node = opened[0]
    k = _k(node)
    book = ReleaseBook(tmp_path / "analytics.db")
    hidden = [i for i, r in enumerate(_ask(node, book, BY_SEX, k)) if r is not None]
    table = _ask(node, book, TABLE_AS_S, k)  # "s": female, male, total
    assert table[hidden[0]] is not None  # the same sex stays hidden
    assert table[2] is not None  # and the total that would give it away is hidden


def test_the_record_survives_a_restart_and_is_per_project_and_cohort(
    opened: list[Node], tmp_path: Path
) -> None:
    node = opened[0]
    k = _k(node)
    path = tmp_path / "analytics.db"
    _ask(node, ReleaseBook(path), BY_SEX, k)
    after_restart = ReleaseBook(path)
    assert after_restart.cohorts("p") == 1
    assert _ask(node, after_restart, TOTAL, k) != [None]
    assert _ask(node, after_restart, TOTAL, k, project="other") == [None]
    narrower = QuerySpec.parse(
        {"cohort": {"sex": ["female"]}, "statistics": [{"id": "n", "kind": "count"}]}
    )
    assert len(_ask(node, after_restart, narrower, 1)) == 1  # another cohort, its own record
    assert after_restart.cohorts("p") == 2


def test_an_unreadable_record_refuses_rather_than_forgets(
    opened: list[Node], tmp_path: Path
) -> None:
    import sqlite3

    node = opened[0]
    path = tmp_path / "analytics.db"
    _ask(node, ReleaseBook(path), BY_SEX, _k(node))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE released_cells SET record = '{\"format\": 99}'")
    with pytest.raises(AnalyticsError, match="release record"):
        _ask(node, ReleaseBook(path), TOTAL, _k(node))
