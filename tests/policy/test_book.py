"""The project book on SQLite and PostgreSQL: file, read, and compare-and-swap updates."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from medspace.policy import (
    ConcurrentUpdateError,
    ProjectBook,
    ProjectError,
    ProjectState,
    ProjectStatus,
    UnknownProjectError,
    contract_hash,
)

from ._data import LI, T0, WANG


def test_filed_project_reads_back_equal(engine: Engine, requested: ProjectState) -> None:
    book = ProjectBook(engine)
    book.file(requested, now=T0)
    assert book.get("t2d-outcomes") == requested
    assert book.ids() == ["t2d-outcomes"]


def test_project_id_is_unique(engine: Engine, requested: ProjectState) -> None:
    book = ProjectBook(engine)
    book.file(requested, now=T0)
    with pytest.raises(ProjectError, match="exists already"):
        book.file(requested, now=T0)


def test_unknown_project_is_not_found(engine: Engine) -> None:
    with pytest.raises(UnknownProjectError, match="no project 'nope'"):
        ProjectBook(engine).get("nope")


def test_lifecycle_steps_are_stored(engine: Engine, requested: ProjectState) -> None:
    book = ProjectBook(engine)
    book.file(requested, now=T0)
    book.update("t2d-outcomes", lambda s: s.approve(LI, "h1", "ok", T0), now=T0)
    stored = book.get("t2d-outcomes")
    verdict = stored.verdict("h1")
    assert verdict is not None and verdict.contract_hash == contract_hash(stored.project, "h1")
    assert stored.status(T0) is ProjectStatus.ACTIVE


def test_a_reader_sees_what_another_book_wrote(engine: Engine, requested: ProjectState) -> None:
    # A book parses a state once per stored text: a revocation written through another
    # book (another process) must reach a reader that read the project before.
    reader, writer = ProjectBook(engine), ProjectBook(engine)
    writer.file(requested, now=T0)
    assert reader.get("t2d-outcomes") == requested
    writer.update("t2d-outcomes", lambda s: s.approve(LI, "h1", "ok", T0), now=T0)
    assert reader.get("t2d-outcomes").verdict("h1") is not None
    assert reader.get("t2d-outcomes") is reader.get("t2d-outcomes")  # unchanged: parsed once


def test_refused_step_stores_nothing(engine: Engine, requested: ProjectState) -> None:
    book = ProjectBook(engine)
    book.file(requested, now=T0)
    with pytest.raises(ProjectError, match="not for h2"):
        book.update("t2d-outcomes", lambda s: s.approve(LI, "h2", "ok", T0), now=T0)
    assert book.get("t2d-outcomes") == requested


def test_terms_cannot_be_changed_through_an_update(engine: Engine, requested: ProjectState) -> None:
    book = ProjectBook(engine)
    book.file(requested, now=T0)
    widened = requested.project.model_copy(update={"variables": ("age", "note.text")})
    with pytest.raises(ProjectError, match="terms never change"):
        book.update("t2d-outcomes", lambda s: s.model_copy(update={"project": widened}), now=T0)


def test_concurrent_steward_decisions_do_not_overwrite_each_other(
    engine: Engine, requested: ProjectState
) -> None:
    book = ProjectBook(engine)
    book.file(requested, now=T0)
    calls = {"n": 0}

    def approve_h1_while_h2_sneaks_in(state: ProjectState) -> ProjectState:
        calls["n"] += 1
        if calls["n"] == 1:  # another worker writes between our read and our write
            book.update("t2d-outcomes", lambda s: s.approve(WANG, "h2", "ok", T0), now=T0)
        return state.approve(LI, "h1", "ok", T0)

    book.update("t2d-outcomes", approve_h1_while_h2_sneaks_in, now=T0)
    stored = book.get("t2d-outcomes")
    assert calls["n"] == 2  # retried on the fresh state
    assert stored.approved_nodes() == ("h1", "h2")


def test_endless_collisions_give_up_with_a_clear_error(
    engine: Engine, requested: ProjectState
) -> None:
    book = ProjectBook(engine)
    book.file(requested, now=T0)
    later = {"t": T0}

    def always_collide(state: ProjectState) -> ProjectState:
        later["t"] += timedelta(seconds=1)
        book.update("t2d-outcomes", lambda s: s, now=later["t"])
        return state

    with pytest.raises(ConcurrentUpdateError, match="read it again and retry"):
        book.update("t2d-outcomes", always_collide, now=T0)
