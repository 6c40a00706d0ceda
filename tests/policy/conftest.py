"""Fixtures for policy tests: people, a project, node policies, a fixed clock, engines."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from medspace.policy import Context, MemoryRecorder, Project, ProjectState

from ._data import LI, T0, WANG, project_terms


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
