"""Fixtures for policy tests: people, a project, node policies, a fixed clock, engines."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from medspace.policy import Context, MemoryRecorder, Project, ProjectState

from ._data import LI, T0, WANG, project_terms

PG_URL = os.environ.get("MEDSPACE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def t0() -> datetime:
    """A fixed 'now' inside the project's term: expiry never depends on the clock."""
    return T0


@pytest.fixture
def project() -> Project:
    return Project.parse(project_terms())


@pytest.fixture
def requested(project: Project) -> ProjectState:
    return ProjectState.request(project, T0 - timedelta(days=40))


@pytest.fixture
def active(requested: ProjectState) -> ProjectState:
    """Approved by h1 and h2 before the start, so active at T0."""
    when = T0 - timedelta(days=35)
    state = requested.approve(LI, "h1", "ethics vote 2025-17 attached", when)
    return state.approve(WANG, "h2", "meets our standing policy", when)


@pytest.fixture
def recorder() -> MemoryRecorder:
    return MemoryRecorder()


@pytest.fixture
def ctx(recorder: MemoryRecorder) -> Callable[..., Context]:
    """Build a Context at T0 (override any field) that records into `recorder`."""

    def build(**fields: Any) -> Context:
        fields.setdefault("now", T0)
        return Context(recorder=recorder, **fields)

    return build


def _postgres_engine() -> Iterator[Engine]:
    schema = f"t_policy_{secrets.token_hex(4)}"
    admin = sa.create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL at {PG_URL} is not reachable ({type(exc).__name__})")
    engine = sa.create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The same test on SQLite (a file) and on PostgreSQL (an isolated schema)."""
    if request.param == "sqlite":
        eng = sa.create_engine(f"sqlite:///{tmp_path / 'policy.db'}")
        yield eng
        eng.dispose()
    else:
        yield from _postgres_engine()
