"""The node's release records, one per project and cohort, kept in its local analytics
database: every answer about one cohort — one-shot queries and analysis sessions alike,
before and after a restart — is protected together with the cells released about it
before (`medspace.analytics.released`).

A cohort is the exact set of patients it selects (`differencing.cohort_digest`), so two
specs selecting the same patients share a record, and a cohort that gains or loses
patients starts a new one (the differencing audit covers the difference). Records hold
populations and shown/hidden/zero flags, never a count or a patient; they never leave
the node. Projects with differential privacy keep none: the noise protects them.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from medspace.analytics.differencing import IdArray, cohort_digest
from medspace.analytics.errors import AnalyticsError
from medspace.analytics.released import ReleaseRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS released_cells (
    project_id TEXT NOT NULL,
    cohort TEXT NOT NULL,
    record TEXT NOT NULL,
    updated TEXT NOT NULL,
    PRIMARY KEY (project_id, cohort)
)
"""


class ReleaseBook:
    """Release records by (project, cohort) in the SQLite file `path` (thread-safe).

    One record object per cohort is shared by every query and session that uses it at
    the same time, so their answers are checked one after another; each change is
    written through before the answer leaves."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._open: weakref.WeakValueDictionary[tuple[str, str], ReleaseRecord] = (
            weakref.WeakValueDictionary()
        )
        try:
            with self._connect() as conn:
                conn.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise _failed(path, exc) from None

    def record(self, project_id: str, cohort_ids: Sequence[int] | IdArray) -> ReleaseRecord:
        """The record of what was released about this cohort in this project."""
        key = (project_id, cohort_digest(np.asarray(cohort_ids, dtype=np.int64)))
        with self._lock:
            found = self._open.get(key)
            if found is None:
                found = self._load(key)
                found.saver = lambda text: self._save(key, text)
                self._open[key] = found
        return found

    def cohorts(self, project_id: str) -> int:
        """How many cohorts of the project have a record here."""
        try:
            with self._connect() as conn:
                row = conn.execute(
                    "SELECT count(*) FROM released_cells WHERE project_id = ?", (project_id,)
                ).fetchone()
        except sqlite3.Error as exc:
            raise _failed(self._path, exc) from None
        return int(row[0])

    def _load(self, key: tuple[str, str]) -> ReleaseRecord:
        try:
            with self._connect() as conn:
                row = conn.execute(
                    "SELECT record FROM released_cells WHERE project_id = ? AND cohort = ?", key
                ).fetchone()
        except sqlite3.Error as exc:
            raise _failed(self._path, exc) from None
        return ReleaseRecord() if row is None else ReleaseRecord.from_json(row[0])

    def _save(self, key: tuple[str, str], text: str) -> None:
        try:
            with self._connect() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO released_cells VALUES (?, ?, ?, ?)",
                    (*key, text, datetime.now(UTC).isoformat()),
                )
        except sqlite3.Error as exc:
            raise _failed(self._path, exc) from None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for one transaction (committed on success), then closed."""
        conn = sqlite3.connect(self._path, timeout=30)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            with conn:
                yield conn
        finally:
            conn.close()


def _failed(path: Path, exc: sqlite3.Error) -> AnalyticsError:
    return AnalyticsError(
        f"cannot use the release records in {path.name} ({type(exc).__name__}): check the "
        "node directory's permissions and free disk space; nothing was answered"
    )


__all__ = ["ReleaseBook"]
