"""The demo's session check: it counts rows the session holds back and refuses any
shown value that differs from the one-shot query."""

from __future__ import annotations

from typing import Any

import pytest

from medspace.analytics.demo_session import SessionDemoError, _held_back


def _row(labels: tuple[str, ...], value: float | None, suppressed: bool = False) -> Any:
    return {"labels": list(labels), "values": {"n": value}, "suppressed": suppressed}


def test_rows_held_back_by_the_session_are_counted() -> None:
    alone = [_row(("<60",), 40.0), _row(("60+",), 12.0)]
    session = [_row(("<60",), 40.0), _row(("60+",), None, suppressed=True)]
    assert _held_back("by_band", session, alone) == 1
    assert _held_back("by_band", alone, alone) == 0


@pytest.mark.parametrize(
    "session",
    [
        [_row(("<60",), 41.0), _row(("60+",), 12.0)],  # a shown value differs
        [_row(("<60",), 40.0)],  # a row missing
        [_row(("60+",), 12.0), _row(("<60",), 40.0)],  # rows in another order
    ],
)
def test_a_session_answer_that_differs_otherwise_fails_the_demo(session: list[Any]) -> None:
    alone = [_row(("<60",), 40.0), _row(("60+",), 12.0)]
    with pytest.raises(SessionDemoError):
        _held_back("by_band", session, alone)
