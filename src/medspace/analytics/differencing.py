"""Differencing protection: per project, a node does not answer two cohorts that differ
by fewer than k patients.

The classic attack: "count of C22 patients" (100), then "count of C22 patients except
men aged 37" (99): each count is large, the difference is one person. Every statistic
here is a sum over the patients of a cohort, so two answers over cohorts A and B reveal
the sum over A Δ B. `QueryAudit` therefore remembers, per project, the cohorts it has
answered (as sets of internal person ids, compressed, in a local SQLite file that never
leaves the node) and refuses a new cohort when

1. it differs from an earlier one by 0 < |A Δ B| < k patients ("pairwise"), or
2. together with the earlier ones it isolates a group of 0 < size < k patients: the
   answered cohorts split the patients into *atoms* (patients who are in exactly the
   same cohorts); an atom is exposed when its indicator is a linear combination of the
   cohorts' indicators (it lies in their row space), so counts or sums over the cohorts
   add and subtract to the atom's ("three-query" variants such as A, B = A - x + y, C = y).

Identical repeats are fine (|Δ| = 0 reveals nothing new). A cohort of fewer than k
patients gets no answer at all (`local.disclose` refuses it, `cohort-below-k`: its zeros
would describe those patients). The audit lets it through to that refusal and does not
remember it: it is no answered sum, so it must not excuse the small atom it forms (after
"the one C22 man aged 21", A = C22, B = A - him - W and C = W still add up to him). Every
cohort remembered had k patients or more when answered, whatever k is later. Under
differential privacy the caller skips the audit: the noise protects the difference.
"""

from __future__ import annotations

import hashlib
import sqlite3
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from medspace.analytics.errors import AnalyticsError, DifferencingRefused

IdArray = npt.NDArray[np.int64]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answered_cohort (
    project_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    ids BLOB NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (project_id, digest)
)
"""


def encode_ids(ids: IdArray) -> bytes:
    """Sorted unique ids as zlib-compressed little-endian deltas."""
    ordered = _sorted_unique(ids)
    deltas = np.diff(ordered, prepend=np.int64(0))
    # Level 1: deltas of sorted ids compress almost as well as at 6, several times faster.
    return zlib.compress(deltas.astype("<i8").tobytes(), 1)


def cohort_digest(ids: IdArray) -> str:
    """SHA-256 hex of the sorted unique ids (little-endian int64), what an identical
    repeat is recognised by."""
    return hashlib.sha256(_sorted_unique(ids).astype("<i8").tobytes()).hexdigest()


def _sorted_unique(ids: Sequence[int] | IdArray) -> IdArray:
    values = np.asarray(ids, dtype=np.int64)
    if values.size < 2 or bool(np.all(values[1:] > values[:-1])):
        return values  # the cohort query already returns them sorted: skip the sort
    return np.unique(values)


def decode_ids(blob: bytes) -> IdArray:
    """Inverse of `encode_ids`."""
    deltas = np.frombuffer(zlib.decompress(blob), dtype="<i8")
    return np.cumsum(deltas).astype(np.int64)


class QueryAudit:
    """The node's record of answered cohorts, per project, in the SQLite file `path`."""

    def __init__(self, path: Path) -> None:
        self._path = path
        try:
            with self._connect() as conn:
                conn.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise AnalyticsError(
                f"cannot open the query audit at {path.name} ({type(exc).__name__}): check "
                "the node directory's permissions"
            ) from None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    def check(
        self,
        project_id: str,
        cohort_ids: Sequence[int] | IdArray,
        *,
        min_cell_size: int,
        record: bool = True,
    ) -> None:
        """Raise `DifferencingRefused` when the cohort, with the project's earlier
        cohorts, would expose fewer than `min_cell_size` patients; otherwise remember it
        as answered (with `record`). Check and record are one transaction. A cohort of
        fewer than `min_cell_size` patients passes and is not remembered: the node
        refuses to answer about it (`cohort-below-k`)."""
        if min_cell_size < 1:
            raise AnalyticsError("min_cell_size must be at least 1")
        new = _sorted_unique(cohort_ids)
        if new.size < min_cell_size:
            return  # no answer is given about it (cohort-below-k): no sum to difference
        digest = cohort_digest(new)
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            seen = conn.execute(
                "SELECT 1 FROM answered_cohort WHERE project_id = ? AND digest = ?",
                (project_id, digest),
            ).fetchone()
            if seen is not None:
                conn.execute("COMMIT")
                return  # an identical repeat reveals nothing new
            rows = conn.execute(
                "SELECT ids FROM answered_cohort WHERE project_id = ? ORDER BY created",
                (project_id,),
            ).fetchall()
            earlier = [decode_ids(b) for (b,) in rows]
            _check_pairwise(new, earlier, min_cell_size)
            _check_atoms(new, earlier, min_cell_size)
            if record:
                conn.execute(
                    "INSERT INTO answered_cohort VALUES (?, ?, ?, ?, ?)",
                    (project_id, digest, len(new), encode_ids(new), datetime.now(UTC).isoformat()),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    def close(self) -> None:
        """Nothing to release: every check opens and closes its own connection."""

    def answered(self, project_id: str) -> int:
        """How many distinct cohorts the project has had answered here."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM answered_cohort WHERE project_id = ?", (project_id,)
            ).fetchone()
        return int(row[0])


def _refuse(k: int) -> DifferencingRefused:
    return DifferencingRefused(
        f"this cohort differs from a cohort already answered for this project by fewer "
        f"than k = {k} patients (or, with earlier ones, singles out such a group), so "
        "answering both could disclose those patients; widen the cohort, ask a query with "
        "differential privacy, or ask a steward"
    )


def _check_pairwise(new: IdArray, earlier: list[IdArray], k: int) -> None:
    for old in earlier:
        common = np.intersect1d(new, old, assume_unique=True).size
        difference = new.size + old.size - 2 * common
        if 0 < difference < k:
            raise _refuse(k)


def _check_atoms(new: IdArray, earlier: list[IdArray], k: int) -> None:
    cohorts = [*earlier, new]
    if len(cohorts) < 2:
        return
    union = np.unique(np.concatenate(cohorts))
    if union.size == 0:
        return
    member = np.vstack([np.isin(union, c, assume_unique=True) for c in cohorts])
    packed = np.packbits(member, axis=0)
    _, first, sizes = np.unique(packed, axis=1, return_index=True, return_counts=True)
    atoms = member[:, first].astype(np.float64)  # cohorts x atoms, 0/1
    small = [j for j, size in enumerate(sizes) if 0 < size < k]
    if not small:
        return
    gram = np.linalg.pinv(atoms @ atoms.T)
    for j in small:
        column = atoms[:, j]
        if float(column @ gram @ column) > 1 - 1e-9:
            raise _refuse(k)
