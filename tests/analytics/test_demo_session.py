"""The demo's session check: a session's answer and the one-shot query of the same
statistic must show the same values and hide the same rows (the nodes protect every
answer about one cohort together); anything else fails the demo."""

from __future__ import annotations

from typing import Any

import pytest

from medspace.analytics.demo_session import SessionDemoError, _same_rows


def _row(labels: tuple[str, ...], value: float | None, suppressed: bool = False) -> Any:
    return {"labels": list(labels), "values": {"n": value}, "suppressed": suppressed}


ALONE = [_row(("<60",), 40.0), _row(("60+",), None, suppressed=True)]


def test_rows_hidden_in_both_are_counted() -> None:
    assert _same_rows("by_band", ALONE, ALONE) == 1


@pytest.mark.parametrize(
    "session",
    [
        [_row(("<60",), 41.0), _row(("60+",), None, suppressed=True)],  # a value differs
        [_row(("<60",), 40.0), _row(("60+",), 12.0)],  # the query hides what it shows
        [_row(("<60",), None, suppressed=True), _row(("60+",), None, suppressed=True)],
        [_row(("<60",), 40.0)],  # a row missing
        [_row(("60+",), None, suppressed=True), _row(("<60",), 40.0)],  # another order
    ],
)
def test_a_session_answer_that_differs_from_its_query_fails_the_demo(
    session: list[Any],
) -> None:
    with pytest.raises(SessionDemoError):
        _same_rows("by_band", session, ALONE)
