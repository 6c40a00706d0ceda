"""The analytics session ids this node has prepared, remembered for good.

A session id fixes the pairwise masks of every secure-aggregation round in it (the pair
seeds are derived from the session, the round and the participants) and keys the node's
DP budget spend. A hub that could prepare the same id twice would reset the node's "mask
once, unmask once" memory and get the same masks again under a different dropout story,
which hands it the node's own vector; on a DP project it would get fresh noise for a
budget charged once. So each id is accepted once, ever, across restarts: the hub makes a
new random id for every query and every analysis session.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from medspace.errors import MedSpaceError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS prepared_session (
    session TEXT PRIMARY KEY,
    prepared TEXT NOT NULL
)
"""


class PreparedSessions:
    """The node's record of prepared session ids, in the SQLite file `path`."""

    def __init__(self, path: Path) -> None:
        self._path = path
        try:
            conn = self._connect()
            try:
                conn.execute(_SCHEMA)
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise MedSpaceError(
                f"cannot open the record of prepared sessions in {path.name} "
                f"({type(exc).__name__}): check the node directory's permissions"
            ) from None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    def claim(self, session: str, now: datetime) -> bool:
        """Record `session` as prepared; False when it was prepared before."""
        conn = self._connect()
        try:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO prepared_session (session, prepared) VALUES (?, ?)",
                (session, now.isoformat()),
            )
            return cursor.rowcount == 1
        finally:
            conn.close()
