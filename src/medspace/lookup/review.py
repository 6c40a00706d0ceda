"""The node's own lookup log (`DIR/lookup.db`, SQLite, 0600): every lookup this node asked
or answered, the patients it matched (by the node's pseudonym only), alerts, VIP/staff
flags, the steward's review of break-glass events, and an outbox of signed ledger
entries not yet delivered to the hub.

It never leaves the node. It holds no identifiers: patients appear only as the store's
keyed pseudonyms, justifications only after PHI scrubbing (and as a SHA-256 digest, which
the ledger also carries). It is also the responder's replay memory: one row per
(request, role) is unique, so a request answered once is refused the second time, even
after a restart.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from medspace.lookup.errors import LookupLogError, RequestRejected, ReviewError

LOG_FILE = "lookup.db"
ASKED = "asked"
ANSWERED = "answered"
VERDICTS = ("justified", "unjustified")
FLAG_KINDS = ("vip", "staff")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS event (
    id INTEGER PRIMARY KEY,
    request TEXT NOT NULL,
    role TEXT NOT NULL,
    time TEXT NOT NULL,
    clinician TEXT NOT NULL,
    requester TEXT NOT NULL,
    purpose TEXT NOT NULL,
    break_glass INTEGER NOT NULL,
    justification TEXT NOT NULL,
    justification_sha256 TEXT NOT NULL,
    status TEXT NOT NULL,
    matches INTEGER NOT NULL DEFAULT 0,
    verdict TEXT,
    note TEXT,
    reviewed_at TEXT,
    UNIQUE (request, role)
);
CREATE INDEX IF NOT EXISTS event_clinician ON event (requester, clinician, time);
CREATE TABLE IF NOT EXISTS matched (
    event_id INTEGER NOT NULL,
    pseudonym TEXT NOT NULL,
    kind TEXT NOT NULL,
    time TEXT NOT NULL,
    requester TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS matched_pseudonym ON matched (pseudonym, time);
CREATE TABLE IF NOT EXISTS alert (
    id INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    kind TEXT NOT NULL,
    request TEXT NOT NULL,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS flag (
    pseudonym TEXT PRIMARY KEY,
    kind TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    body BLOB NOT NULL
);
"""


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One lookup this node asked or answered, as the review list shows it."""

    request: str
    role: str
    time: str
    clinician: str
    requester: str
    purpose: str
    break_glass: bool
    justification: str
    status: str
    matches: int
    verdict: str | None
    note: str | None


@dataclass(frozen=True, slots=True)
class LoggedAlert:
    """One unusual-use alert."""

    time: str
    kind: str
    request: str
    count: int


class LookupLog:
    """The lookup log of one node (thread-safe)."""

    def __init__(self, directory: Path) -> None:
        path = Path(directory) / LOG_FILE
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a power cut may lose the last commits, never corrupt the log; the
        # ledger (at the hub) is the durable record of every lookup.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                raise LookupLogError(
                    f"the node's lookup log cannot be written ({error}); check {LOG_FILE} "
                    "in the node directory (disk full? locked by a stuck process?)"
                ) from None
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- events ---------------------------------------------------------------------------

    def record(
        self,
        *,
        request: str,
        role: str,
        now: datetime,
        clinician: str,
        requester: str,
        purpose: str,
        break_glass: bool,
        justification: str,
        justification_sha256: str,
        status: str,
    ) -> int:
        """Log one lookup; raises `RequestRejected` if this request was logged in this role
        before (a replay)."""
        try:
            with self._tx() as db:
                cursor = db.execute(
                    "INSERT INTO event (request, role, time, clinician, requester, purpose, "
                    "break_glass, justification, justification_sha256, status) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        request,
                        role,
                        _text(now),
                        clinician,
                        requester,
                        purpose,
                        int(break_glass),
                        justification,
                        justification_sha256,
                        status,
                    ),
                )
                return int(cursor.lastrowid or 0)
        except sqlite3.IntegrityError:
            raise RequestRejected(
                "lookup request refused: this request id was seen before (a replay)"
            ) from None

    def finish(
        self,
        event_id: int,
        status: str,
        matches: Sequence[tuple[str, str]] = (),
        *,
        now: datetime,
        requester: str,
    ) -> None:
        """Set an event's outcome and the (pseudonym, kind) of each patient it matched."""
        with self._tx() as db:
            db.execute(
                "UPDATE event SET status = ?, matches = ? WHERE id = ?",
                (status, len(matches), event_id),
            )
            db.executemany(
                "INSERT INTO matched (event_id, pseudonym, kind, time, requester) "
                "VALUES (?, ?, ?, ?, ?)",
                [(event_id, p, k, _text(now), requester) for p, k in matches],
            )

    def recent_by_clinician(
        self, requester: str, clinician: str, role: str, now: datetime, window: timedelta
    ) -> int:
        """How many lookups `clinician` of `requester` made in `window` up to now."""
        with self._lock:
            row = self._db.execute(
                "SELECT count(*) FROM event WHERE requester = ? AND clinician = ? AND role = ? "
                "AND time > ?",
                (requester, clinician, role, _text(now - window)),
            ).fetchone()
        return int(row[0])

    def sites_for(self, pseudonym: str, now: datetime, window: timedelta) -> int:
        """How many distinct nodes asked for this patient in `window` up to now."""
        with self._lock:
            row = self._db.execute(
                "SELECT count(DISTINCT requester) FROM matched WHERE pseudonym = ? AND time > ?",
                (pseudonym, _text(now - window)),
            ).fetchone()
        return int(row[0])

    def events(self, *, break_glass_only: bool = False, limit: int = 200) -> list[LoggedEvent]:
        """Logged lookups, newest first."""
        where = "WHERE break_glass = 1" if break_glass_only else ""
        with self._lock:
            rows = self._db.execute(
                "SELECT request, role, time, clinician, requester, purpose, break_glass, "
                f"justification, status, matches, verdict, note FROM event {where} "
                "ORDER BY time DESC, id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            LoggedEvent(
                r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7], r[8], r[9], r[10], r[11]
            )
            for r in rows
        ]

    def mark(self, request: str, verdict: str, note: str, now: datetime) -> LoggedEvent:
        """Record the steward's verdict on a break-glass event; raises `ReviewError` for an
        unknown event, one that was not break-glass, or a bad verdict."""
        if verdict not in VERDICTS:
            raise ReviewError("mark an event --justified or --unjustified")
        with self._tx() as db:
            found = db.execute(
                "SELECT count(*) FROM event WHERE request = ? AND break_glass = 1", (request,)
            ).fetchone()
            if not found[0]:
                raise ReviewError(
                    "no break-glass event with that request id here; list them with "
                    "`medspace lookup review --node DIR`"
                )
            db.execute(
                "UPDATE event SET verdict = ?, note = ?, reviewed_at = ? "
                "WHERE request = ? AND break_glass = 1",
                (verdict, note, _text(now), request),
            )
        return next(
            e for e in self.events(break_glass_only=True, limit=10_000) if e.request == request
        )

    # -- alerts and flags -----------------------------------------------------------------

    def add_alert(self, kind: str, request: str, count: int, now: datetime) -> None:
        """Keep an alert for the review list."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO alert (time, kind, request, count) VALUES (?, ?, ?, ?)",
                (_text(now), kind, request, count),
            )

    def alerts(self, limit: int = 200) -> list[LoggedAlert]:
        """Alerts, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT time, kind, request, count FROM alert ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [LoggedAlert(r[0], r[1], r[2], r[3]) for r in rows]

    def set_flag(self, pseudonym: str, kind: str) -> None:
        """Flag a patient (by pseudonym) as VIP or staff: their lookups raise alerts."""
        if kind not in FLAG_KINDS:
            raise ReviewError("a flag is --vip or --staff")
        with self._tx() as db:
            db.execute(
                "INSERT INTO flag (pseudonym, kind) VALUES (?, ?) "
                "ON CONFLICT (pseudonym) DO UPDATE SET kind = excluded.kind",
                (pseudonym, kind),
            )

    def flag_of(self, pseudonym: str) -> str | None:
        """The patient's flag, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT kind FROM flag WHERE pseudonym = ?", (pseudonym,)
            ).fetchone()
        return None if row is None else str(row[0])

    # -- outbox ---------------------------------------------------------------------------

    def queue(self, bodies: Sequence[bytes]) -> None:
        """Keep signed ledger entries until they reach the hub."""
        with self._tx() as db:
            db.executemany("INSERT INTO outbox (body) VALUES (?)", [(b,) for b in bodies])

    def outbox(self, limit: int = 100) -> list[tuple[int, bytes]]:
        """Queued entries (id, body), oldest first; `delivered` removes them."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, body FROM outbox ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [(int(r[0]), bytes(r[1])) for r in rows]

    def delivered(self, ids: Sequence[int]) -> None:
        """Forget queued entries the hub has taken."""
        with self._tx() as db:
            db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])
