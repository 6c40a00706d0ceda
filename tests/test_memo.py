"""`by_identity`: results remembered per object, never handed to another object."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import BaseModel, ConfigDict

from medspace.memo import by_identity


class Terms(BaseModel):
    model_config = ConfigDict(frozen=True)
    nodes: tuple[str, ...]


def counted() -> tuple[list[str], Callable[[Terms, str], str]]:
    calls: list[str] = []

    @by_identity(maxsize=2)
    def describe(terms: Terms, node: str) -> str:
        calls.append(node)
        if node not in terms.nodes:
            raise ValueError(f"{node} takes no part")
        return f"{node} of {len(terms.nodes)}"

    return calls, describe


def test_the_same_object_and_arguments_are_worked_out_once() -> None:
    calls, describe = counted()
    terms = Terms(nodes=("h1", "h2"))
    assert describe(terms, "h1") == describe(terms, "h1") == "h1 of 2"
    assert describe(terms, "h2") == "h2 of 2"
    assert calls == ["h1", "h2"]


def test_an_equal_object_or_a_changed_copy_is_worked_out_again() -> None:
    calls, describe = counted()
    terms = Terms(nodes=("h1", "h2"))
    describe(terms, "h1")
    describe(Terms(nodes=("h1", "h2")), "h1")
    widened = terms.model_copy(update={"nodes": ("h1", "h2", "h3")})
    assert describe(widened, "h1") == "h1 of 3"
    assert calls == ["h1", "h1", "h1"]


def test_errors_are_not_remembered_and_old_entries_make_room() -> None:
    calls, describe = counted()
    terms = Terms(nodes=("h1",))
    for _ in range(2):
        with pytest.raises(ValueError, match="h9 takes no part"):
            describe(terms, "h9")
    others = [Terms(nodes=("h1",)) for _ in range(3)]
    for other in others:
        describe(other, "h1")
    describe(others[0], "h1")  # pushed out by the two after it (maxsize 2)
    assert calls == ["h9", "h9", "h1", "h1", "h1", "h1"]
