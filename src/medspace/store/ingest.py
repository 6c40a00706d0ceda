"""One ingest run: connector outcomes in, batched upserts and quarantine entries out.

Units are buffered and written in batches, each batch in ONE transaction together with
the run's updated counts, so the counts in `ingest_run` always describe committed data.
Within one run, a unit that repeats a record id seen earlier with different content is
quarantined (the earlier record is kept: nothing is overwritten, nothing lost); a unit
that repeats a record identically (HL7 v2 resends the patient in every message) is
stored, and the repeat costs no write. Across runs the same id updates the row.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Engine, Table, select, update

from medspace.connectors.base import Outcome, Parsed, Rejected, Skipped
from medspace.errors import UsageError
from medspace.model import KIND_OF, Note, Patient, Record
from medspace.store import crypto, rows
from medspace.store.db import BulkUpsert
from medspace.store.errors import KeyMismatchError
from medspace.store.keyring import QUARANTINE_OWNER, DataKeys, patient_owner
from medspace.store.repeats import SeenFilter, same_as_stored
from medspace.store.reports import IngestReport
from medspace.store.schema import TABLE_OF, data_key, ingest_run, quarantine, store_meta

_CHUNK = 500
Row = dict[str, Any]
_Key = tuple[str, str]  # (record kind, source_id)
Writers = dict[tuple[str, tuple[str, ...]], BulkUpsert]


class PatientIndexer(Protocol):
    """Keeps a per-patient index in step with ingest (the linkage index of
    `medspace.linkage`): `index` gets the patients each batch writes, inside that batch's
    transaction, so the index never disagrees with the stored patients."""

    def prepare(self, engine: Engine) -> None:
        """Make sure the index's tables exist (called when the store opens)."""

    def index(self, conn: Connection, patients: Sequence[Patient]) -> None:
        """Write the index rows of `patients` (new or re-ingested)."""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _duplicate_reason(kind: str) -> str:
    return (
        f"duplicate id in this input: an earlier unit of this ingest has a {kind} record "
        "with the same id and different content; the earlier one was kept. Correct the "
        "source and ingest it again"
    )


@dataclass
class _Counts:
    received: int = 0
    stored: int = 0
    skipped: int = 0
    quarantined: int = 0
    repeated: int = 0
    skipped_by_type: Counter[str] = field(default_factory=Counter)
    records: Counter[str] = field(default_factory=Counter)

    def plus(self, other: _Counts) -> _Counts:
        return _Counts(
            self.received + other.received,
            self.stored + other.stored,
            self.skipped + other.skipped,
            self.quarantined + other.quarantined,
            self.repeated + other.repeated,
            self.skipped_by_type + other.skipped_by_type,
            self.records + other.records,
        )


@dataclass
class _Batch:
    counts: _Counts = field(default_factory=_Counts)
    writes: dict[str, list[Record]] = field(default_factory=lambda: defaultdict(list))
    rejected: list[tuple[str, str, str, bytes]] = field(default_factory=list)


class IngestRun:
    """Buffers outcomes and writes them in batches. Use through `NodeStore.ingest`."""

    def __init__(
        self,
        engine: Engine,
        keys: DataKeys,
        pseudonym_key: bytes,
        writers: Writers,
        *,
        source: str,
        batch_size: int,
        progress: Callable[[int], None] | None,
        indexer: PatientIndexer | None = None,
    ) -> None:
        self.run_id = os.urandom(16).hex()
        self._engine = engine
        self._keys = keys
        self._pseudonym_key = pseudonym_key
        self._writers = writers
        self._source = source
        self._batch_size = batch_size
        self._progress = progress
        self._indexer = indexer
        self._seen = SeenFilter()
        self._pending: list[Outcome] = []
        self._done = _Counts()

    @property
    def stored_so_far(self) -> int:
        """Units committed by earlier batches."""
        return self._done.stored

    def start(self) -> None:
        """Record the run as `running`."""
        with self._engine.begin() as conn:
            conn.execute(
                ingest_run.insert().values(
                    source_id=self.run_id, source=self._source, started=_now(), status="running"
                )
            )

    def add(self, outcome: Outcome) -> None:
        """Buffer one outcome; writes a batch when the buffer is full."""
        if isinstance(outcome, Parsed):
            for record in outcome.records:
                if type(record) not in KIND_OF:
                    raise UsageError(
                        f"ingest got a {type(record).__name__} record at {outcome.position} "
                        "of the input: only medspace.model records can be stored"
                    )
        elif not isinstance(outcome, Skipped | Rejected):
            raise UsageError(
                f"ingest got a {type(outcome).__name__}, not a Parsed, Skipped or Rejected "
                "outcome: pass what a medspace connector yields"
            )
        self._pending.append(outcome)
        if len(self._pending) >= self._batch_size:
            self.flush()

    def flush(self) -> None:
        """Write the buffered outcomes in one transaction (all or nothing)."""
        units, self._pending = self._pending, []
        if not units:
            return
        with self._engine.begin() as conn:
            self._check_kek(conn)
            batch = self._classify(conn, units)
            owners = self._key_owners(batch)
            ciphers = self._keys.lookup(conn, owners)
            new_keys, key_rows = self._keys.create(o for o in owners if o not in ciphers)
            ciphers.update(new_keys)
            if key_rows:
                conn.execute(data_key.insert(), key_rows)
            for kind, records in batch.writes.items():
                out = [self._row(r, ciphers) for r in records]
                self._writer(kind, out[0]).run(conn, out)
            patients = [r for r in batch.writes.get("patient", ()) if isinstance(r, Patient)]
            if self._indexer is not None and patients:
                self._indexer.index(conn, patients)
            if batch.rejected:
                conn.execute(quarantine.insert(), self._quarantine_rows(batch, ciphers))
            totals = self._done.plus(batch.counts)
            conn.execute(self._counts_update(totals))
        self._keys.remember(new_keys)
        for kind, records in batch.writes.items():
            for record in records:
                self._seen.add((kind, record.source_id))
        self._done = totals
        if self._progress is not None:
            self._progress(batch.counts.received)

    def finish(self) -> IngestReport:
        """Mark the run completed and report it."""
        with self._engine.begin() as conn:
            conn.execute(
                update(ingest_run)
                .where(ingest_run.c.source_id == self.run_id)
                .values(status="completed", finished=_now())
            )
        done = self._done
        return IngestReport(
            run_id=self.run_id,
            source=self._source,
            received=done.received,
            stored=done.stored,
            skipped=done.skipped,
            quarantined=done.quarantined,
            skipped_by_type=dict(sorted(done.skipped_by_type.items())),
            records=dict(sorted(done.records.items())),
            repeated=done.repeated,
        )

    def fail(self) -> None:
        """Mark the run failed (best effort: the database may be what failed)."""
        with suppress(Exception), self._engine.begin() as conn:  # the caller raises the cause
            conn.execute(
                update(ingest_run)
                .where(ingest_run.c.source_id == self.run_id)
                .values(status="failed", finished=_now())
            )

    # -- steps of one batch ---------------------------------------------------------

    def _check_kek(self, conn: Connection) -> None:
        # FOR SHARE on PostgreSQL: a concurrent rotation waits for this batch (or this
        # batch waits for it and then sees the new id), so no data key is wrapped under
        # a KEK the store has just retired.
        recorded = conn.execute(
            select(store_meta.c.kek_id).where(store_meta.c.id == 1).with_for_update(read=True)
        ).scalar_one()
        if recorded != self._keys.kek.key_id:
            raise KeyMismatchError(
                "the node key was rotated by another process during this ingest: reopen "
                "the node and run the ingest again (it is idempotent)"
            )

    def _earlier(self, conn: Connection, units: list[Outcome]) -> dict[_Key, Row]:
        """Rows this run committed in earlier batches that this batch names again."""
        wanted: dict[str, set[str]] = defaultdict(set)
        for unit in units:
            if isinstance(unit, Parsed):
                for record in unit.records:
                    key = (KIND_OF[type(record)], record.source_id)
                    if self._seen.maybe_contains(key):
                        wanted[key[0]].add(key[1])
        found: dict[_Key, Row] = {}
        for kind, ids in wanted.items():
            table: Table = TABLE_OF[kind]
            id_list = sorted(ids)
            for start in range(0, len(id_list), _CHUNK):
                query = select(table).where(
                    table.c.ingest_run_id == self.run_id,
                    table.c.source_id.in_(id_list[start : start + _CHUNK]),
                )
                for row in conn.execute(query).mappings():
                    found[(kind, row["source_id"])] = dict(row)
        return found

    def _classify(self, conn: Connection, units: list[Outcome]) -> _Batch:
        batch = _Batch()
        counts = batch.counts
        earlier = self._earlier(conn, units)
        accepted: dict[_Key, Record] = {}
        for unit in units:
            counts.received += 1
            if isinstance(unit, Skipped):
                counts.skipped += 1
                counts.skipped_by_type[unit.unit_type] += 1
            elif isinstance(unit, Rejected):
                counts.quarantined += 1
                batch.rejected.append((unit.source, unit.position, unit.reason, unit.raw))
            else:
                self._classify_parsed(conn, unit, earlier, accepted, batch)
        return batch

    def _classify_parsed(
        self,
        conn: Connection,
        unit: Parsed,
        earlier: dict[_Key, Row],
        accepted: dict[_Key, Record],
        batch: _Batch,
    ) -> None:
        """Accept the unit (queue its new records) or quarantine it as a conflicting repeat."""
        mine: dict[_Key, Record] = {}
        repeats = 0
        for record in unit.records:
            key = (KIND_OF[type(record)], record.source_id)
            before = mine.get(key) or accepted.get(key)
            if before is not None:
                same = before == record
            elif key in earlier:
                same = self._same_as_stored(conn, record, earlier[key])
            else:
                mine[key] = record
                continue
            if not same:
                batch.counts.quarantined += 1
                raw = rows.records_to_json(unit.records)
                batch.rejected.append((unit.source, unit.position, _duplicate_reason(key[0]), raw))
                return
            repeats += 1
        accepted.update(mine)
        batch.counts.stored += 1
        batch.counts.repeated += repeats
        for (kind, _), record in mine.items():
            batch.writes[kind].append(record)
            batch.counts.records[kind] += 1

    def _same_as_stored(self, conn: Connection, record: Record, stored: Row) -> bool:
        if isinstance(record, Patient):
            table, field_name, patient = "person", "identity", record.source_id
        else:
            table, field_name, patient = "note", "text", stored.get("person_source_id", "")

        def open_field(column: str) -> bytes:
            owner = patient_owner(patient)
            cipher = self._keys.lookup(conn, [owner])[owner]
            associated = crypto.aad(table, record.source_id, field_name)
            return crypto.open_sealed(cipher, stored[column], associated, "a stored record")

        return same_as_stored(record, stored, open_field)

    @staticmethod
    def _key_owners(batch: _Batch) -> set[str]:
        owners = {patient_owner(r.source_id) for r in batch.writes.get("patient", ())}
        owners.update(
            patient_owner(r.patient_id) for r in batch.writes.get("note", ()) if isinstance(r, Note)
        )
        if batch.rejected:
            owners.add(QUARANTINE_OWNER)
        return owners

    def _row(self, record: Record, ciphers: dict[str, AESGCM]) -> Row:
        row = rows.CLEAR_COLUMNS[type(record)](record)
        source_id = record.source_id
        row["source_id"] = source_id
        row["ingest_run_id"] = self.run_id
        row["flags"] = rows.flags_text(record.flags)
        if isinstance(record, Patient):
            row["pseudonym"] = crypto.pseudonym(self._pseudonym_key, source_id)
            row["identity_sealed"] = crypto.seal(
                ciphers[patient_owner(source_id)],
                rows.identity_to_json(record.identity),
                crypto.aad("person", source_id, "identity"),
            )
        elif isinstance(record, Note):
            row["text_sealed"] = crypto.seal(
                ciphers[patient_owner(record.patient_id)],
                record.text.encode("utf-8", "surrogatepass"),
                crypto.aad("note", source_id, "text"),
            )
        return row

    def _writer(self, kind: str, sample: Row) -> BulkUpsert:
        columns = tuple(sample)
        writer = self._writers.get((kind, columns))
        if writer is None:
            writer = BulkUpsert(self._engine, TABLE_OF[kind], columns)
            self._writers[(kind, columns)] = writer
        return writer

    def _quarantine_rows(self, batch: _Batch, ciphers: dict[str, AESGCM]) -> list[Row]:
        cipher = ciphers[QUARANTINE_OWNER]
        now = _now()
        out = []
        for source, position, reason, raw in batch.rejected:
            entry_id = os.urandom(16).hex()
            associated = crypto.aad("quarantine", entry_id, "raw")
            out.append(
                {
                    "source_id": entry_id,
                    "ingest_run_id": self.run_id,
                    "source": source,
                    "position": position,
                    "reason": reason,
                    "created": now,
                    "raw_sealed": crypto.seal(cipher, raw, associated),
                }
            )
        return out

    def _counts_update(self, totals: _Counts) -> Any:
        return (
            update(ingest_run)
            .where(ingest_run.c.source_id == self.run_id)
            .values(
                received=totals.received,
                stored=totals.stored,
                skipped=totals.skipped,
                quarantined=totals.quarantined,
                repeated=totals.repeated,
                skipped_by_type=json.dumps(dict(sorted(totals.skipped_by_type.items()))),
                records_by_kind=json.dumps(dict(sorted(totals.records.items()))),
            )
        )
