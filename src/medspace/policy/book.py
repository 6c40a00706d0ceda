"""The project book: project states stored on SQLAlchemy 2 Core (SQLite or PostgreSQL).

Each project is one row holding its state as JSON and a version number. `update` is a
compare-and-swap on that version, so two stewards approving at the same moment cannot
overwrite each other: the second one is retried on the fresh state (and refused by the
lifecycle if the step no longer fits).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from medspace.policy.errors import ConcurrentUpdateError, ProjectError, UnknownProjectError
from medspace.policy.lifecycle import ProjectState

_RETRIES = 5

metadata = sa.MetaData()
projects_table = sa.Table(
    "policy_projects",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(128), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# Built once: a project's state is read on every request about it (a session's every
# statistic), where building the statement cost more than the indexed read.
_READ_STATE = sa.select(projects_table.c.state, projects_table.c.version).where(
    projects_table.c.id == sa.bindparam("project_id")
)


def _now_epoch(now: datetime) -> int:
    return int(now.timestamp())


class ProjectBook:
    """All projects of one hub (or a node's copy of the projects it takes part in)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        metadata.create_all(engine)
        # The last state read of each project, by its stored JSON: reading a project
        # again (each statistic of an analysis session does) parses only what changed.
        self._parsed: dict[str, tuple[str, ProjectState]] = {}

    def file(self, state: ProjectState, *, now: datetime) -> ProjectState:
        """Store a newly requested project. Raises `ProjectError` if the id is taken."""
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    projects_table.insert().values(
                        id=state.project.id,
                        owner=state.project.owner,
                        version=1,
                        state=state.model_dump_json(),
                        updated_at=_now_epoch(now),
                    )
                )
        except sa.exc.IntegrityError:
            raise ProjectError(
                f"a project {state.project.id!r} exists already; choose another id"
            ) from None
        return state

    def get(self, project_id: str) -> ProjectState:
        """The current state of `project_id`. Raises `UnknownProjectError`."""
        return self._read(project_id)[0]

    def ids(self) -> list[str]:
        """Every project id, sorted."""
        with self._engine.connect() as conn:
            return list(conn.scalars(sa.select(projects_table.c.id).order_by(projects_table.c.id)))

    def update(
        self,
        project_id: str,
        change: Callable[[ProjectState], ProjectState],
        *,
        now: datetime,
    ) -> ProjectState:
        """Apply `change` to the current state and store the result atomically.

        `change` is re-run on the fresh state if someone else wrote in between; it may
        raise (e.g. `ProjectError` from a lifecycle step) to store nothing. Raises
        `UnknownProjectError`, or `ConcurrentUpdateError` after repeated collisions.
        """
        for _ in range(_RETRIES):
            state, version = self._read(project_id)
            changed = change(state)
            if changed.project != state.project:
                raise ProjectError("a project's terms never change; file a new project instead")
            with self._engine.begin() as conn:
                written = conn.execute(
                    projects_table.update()
                    .where(projects_table.c.id == project_id)
                    .where(projects_table.c.version == version)
                    .values(
                        version=version + 1,
                        state=changed.model_dump_json(),
                        updated_at=_now_epoch(now),
                    )
                ).rowcount
            if written:
                return changed
        raise ConcurrentUpdateError(
            f"project {project_id!r} kept changing while being updated; read it again and retry"
        )

    def _read(self, project_id: str) -> tuple[ProjectState, int]:
        with self._engine.connect() as conn:
            row = conn.execute(_READ_STATE, {"project_id": project_id}).one_or_none()
        if row is None:
            raise UnknownProjectError(f"no project {project_id!r}; list projects to check the id")
        return self._parse(project_id, row.state), row.version

    def _parse(self, project_id: str, text: str) -> ProjectState:
        """The state stored as `text`, parsed once per distinct text (states are frozen,
        so sharing one is safe)."""
        known = self._parsed.get(project_id)
        if known is not None and known[0] == text:
            return known[1]
        state = ProjectState.parse_json(text)
        self._parsed[project_id] = (text, state)
        return state
