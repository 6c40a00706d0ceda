"""`NodeStore`: the encrypted store of one node (ingest, stats, quarantine, keys)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, suppress
from datetime import UTC
from types import TracebackType

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from medspace.connectors.base import Outcome
from medspace.model import Identity, Record
from medspace.store import cohort, crypto, extract, rows
from medspace.store.crypto import Kek
from medspace.store.db import describe_db_error, make_engine, safe_url
from medspace.store.errors import RecordNotFoundError, StoreError, StoreWriteError
from medspace.store.ingest import IngestRun, PatientIndexer, Writers
from medspace.store.keyring import QUARANTINE_OWNER, DataKeys, KekKeeper, patient_owner
from medspace.store.reports import IngestReport, QuarantineEntry, RotationReport, StoreStats
from medspace.store.rotation import rewrap, settle
from medspace.store.schema import (
    DATA_TABLES,
    ensure_analytics_indexes,
    ingest_run,
    note,
    person,
    quarantine,
)

DEFAULT_BATCH_SIZE = 5000


class NodeStore:
    """The node's store. Open it with `NodeStore.open` (or `medspace.node.open_node`).

    Direct identifiers and note text are kept only as AES-256-GCM ciphertext under a
    per-patient data key; data keys are wrapped under the node's KEK, which the keeper
    holds outside the database.
    """

    def __init__(
        self,
        engine: Engine,
        keeper: KekKeeper,
        kek: Kek,
        pseudonym_key: bytes,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        indexer: PatientIndexer | None = None,
    ) -> None:
        self._engine = engine
        self._keeper = keeper
        self._keys = DataKeys(kek)
        self._pseudonym_key = pseudonym_key
        self._batch_size = batch_size
        self._writers: Writers = {}
        self._indexer = indexer

    @classmethod
    def open(
        cls,
        db_url: str,
        *,
        keeper: KekKeeper,
        pseudonym_key: bytes,
        create: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
        indexer: PatientIndexer | None = None,
    ) -> NodeStore:
        """Open the store at `db_url` with the keeper's KEK (with `create`, make it first).

        `indexer` (the node's linkage index, when it has a linkage key) is kept in step
        with every ingest batch.

        Finishes or undoes a key rotation that a crash interrupted. Raises
        `StoreConfigError` (no store, unsupported database), `KeyMismatchError` (the KEK
        does not match the store) or `StoreError` (database unreachable).
        """
        if batch_size < 1:
            raise StoreError("batch_size must be at least 1")
        engine = make_engine(db_url)
        try:
            with keeper.lock():
                kek = settle(engine, keeper, create=create, url_for_messages=safe_url(db_url))
            ensure_analytics_indexes(engine)
            if indexer is not None:
                indexer.prepare(engine)
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StoreError(
                f"cannot open the store at {safe_url(db_url)} ({describe_db_error(exc)}): "
                "check that the database is running and db_url in node.json is right"
            ) from None
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, keeper, kek, pseudonym_key, batch_size=batch_size, indexer=indexer)

    @property
    def engine(self) -> Engine:
        """The store's engine, for components that own tables in the node's database (the
        linkage index); they never touch the store's own tables through it."""
        return self._engine

    @property
    def indexer(self) -> PatientIndexer | None:
        """The per-patient index kept in step with ingest (the linkage index), if any."""
        return self._indexer

    @property
    def kek_id(self) -> str:
        """Id of the KEK the data keys are wrapped under now."""
        return self._keys.kek.key_id

    def close(self) -> None:
        """Release database connections and forget cached data keys."""
        self._keys.forget_all()
        self._engine.dispose()

    def __enter__(self) -> NodeStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- ingest -------------------------------------------------------------------------

    def ingest(
        self,
        outcomes: Iterable[Outcome],
        *,
        source: str,
        progress: Callable[[int], None] | None = None,
    ) -> IngestReport:
        """Store connector outcomes: upsert Parsed records, count Skipped, quarantine Rejected.

        Writes in transactions of `batch_size` units; after each commit `progress(n)` is
        called with the number of units that batch handled (an increment, e.g. Rich's
        `Progress.advance`). If the database fails, the batch in flight is
        rolled back, earlier batches stay, the run is marked failed and `StoreWriteError`
        says why. If `outcomes` raises, the units read before are stored and the error
        propagates. Raises `UsageError` for an object that is not a connector outcome.
        """
        run = IngestRun(
            self._engine,
            self._keys,
            self._pseudonym_key,
            self._writers,
            source=source,
            batch_size=self._batch_size,
            progress=progress,
            indexer=self._indexer,
        )
        try:
            run.start()
            for outcome in outcomes:
                run.add(outcome)
            run.flush()
            return run.finish()
        except SQLAlchemyError as exc:
            run.fail()
            raise StoreWriteError(
                f"ingest stopped: the database refused a write ({describe_db_error(exc)}); "
                f"{run.stored_so_far} units stored by earlier batches are kept and the run "
                "is marked failed. Fix the cause and run the ingest again (it is idempotent)"
            ) from None
        except Exception:
            with suppress(Exception):
                run.flush()  # keep the units read before the input failed
            run.fail()
            raise

    # -- reading ------------------------------------------------------------------------

    def pseudonym(self, source_id: str) -> str:
        """The patient's keyed pseudonym (stable for this node's pseudonym key)."""
        return crypto.pseudonym(self._pseudonym_key, source_id)

    def patient_identity(self, source_id: str) -> Identity:
        """Decrypt a patient's direct identifiers.

        Raises `RecordNotFoundError`, `KeyMismatchError` (wrong KEK) or
        `TamperedDataError` (ciphertext altered or swapped).
        """
        with self._engine.connect() as conn:
            sealed = conn.execute(
                select(person.c.identity_sealed).where(person.c.source_id == source_id)
            ).scalar_one_or_none()
            if sealed is None:
                raise RecordNotFoundError("no patient with that id in this store")
            cipher = self._cipher(conn, patient_owner(source_id), "patient")
        plain = crypto.open_sealed(
            cipher, sealed, crypto.aad("person", source_id, "identity"), "a patient identity"
        )
        return rows.identity_from_json(plain)

    def note_text(self, source_id: str) -> str:
        """Decrypt a note's text. Raises like `patient_identity`."""
        with self._engine.connect() as conn:
            found = conn.execute(
                select(note.c.person_source_id, note.c.text_sealed).where(
                    note.c.source_id == source_id
                )
            ).one_or_none()
            if found is None:
                raise RecordNotFoundError("no note with that id in this store")
            cipher = self._cipher(conn, patient_owner(found.person_source_id), "note")
        plain = crypto.open_sealed(
            cipher, found.text_sealed, crypto.aad("note", source_id, "text"), "a note text"
        )
        return plain.decode("utf-8", "surrogatepass")

    def read_connection(self) -> AbstractContextManager[Connection]:
        """A connection for reading the store's tables, for node-side components that
        query them directly (the emergency lookup's summary). Identifiers and note text
        stay ciphertext there; use `patient_identity` / `note_text` to read those."""
        return self._engine.connect()

    def iter_records(self, kind: str) -> Iterator[Record]:
        """Yield every record of `kind` ("patient", "note", ... as in `model.KIND_OF`) with
        identities and note text decrypted, read `batch_size` rows at a time.

        Raises `UsageError` for an unknown kind, `RecordNotFoundError` when a patient's
        data key is missing, `KeyMismatchError` / `TamperedDataError` like the other readers.
        """
        return extract.iter_records(self._engine, self._keys, kind, batch_size=self._batch_size)

    def quarantine(self, limit: int | None = None) -> list[QuarantineEntry]:
        """Quarantined units, oldest first: where and why, never their raw bytes."""
        query = select(
            quarantine.c.id,
            quarantine.c.ingest_run_id,
            quarantine.c.source,
            quarantine.c.position,
            quarantine.c.reason,
            quarantine.c.created,
        ).order_by(quarantine.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as conn:
            return [
                QuarantineEntry(
                    id=r.id,
                    run_id=r.ingest_run_id,
                    source=r.source,
                    position=r.position,
                    reason=r.reason,
                    time=r.created.replace(tzinfo=UTC),
                )
                for r in conn.execute(query)
            ]

    def read_quarantine_raw(self, entry_id: int) -> bytes:
        """Decrypt a quarantined unit's raw bytes (for stewards reviewing quarantine)."""
        with self._engine.connect() as conn:
            found = conn.execute(
                select(quarantine.c.source_id, quarantine.c.raw_sealed).where(
                    quarantine.c.id == entry_id
                )
            ).one_or_none()
            if found is None:
                raise RecordNotFoundError(f"no quarantine entry {entry_id}: list them first")
            cipher = self._cipher(conn, QUARANTINE_OWNER, "quarantine entry")
        return crypto.open_sealed(
            cipher,
            found.raw_sealed,
            crypto.aad("quarantine", found.source_id, "raw"),
            "a quarantined unit",
        )

    def stats(self) -> StoreStats:
        """Rows per table now, and counts summed over all ingest runs."""
        with self._engine.connect() as conn:
            counts = {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in DATA_TABLES
            }
            runs = conn.execute(
                select(
                    ingest_run.c.received,
                    ingest_run.c.stored,
                    ingest_run.c.skipped,
                    ingest_run.c.quarantined,
                    ingest_run.c.skipped_by_type,
                )
            ).all()
        by_type: Counter[str] = Counter()
        for run in runs:
            by_type.update(json.loads(run.skipped_by_type))
        return StoreStats(
            rows={k: v for k, v in counts.items() if k != quarantine.name},
            quarantine_rows=counts[quarantine.name],
            runs=len(runs),
            received=sum(r.received for r in runs),
            stored=sum(r.stored for r in runs),
            skipped=sum(r.skipped for r in runs),
            quarantined=sum(r.quarantined for r in runs),
            skipped_by_type=dict(sorted(by_type.items())),
        )

    def connect(self) -> Connection:
        """A connection for read-only SQL pushdown by `medspace.analytics` (aggregates
        only leave through its disclosure control). Use it in a `with` block."""
        return self._engine.connect()

    def count_patients(
        self,
        *,
        condition_prefixes: Sequence[str] = (),
        code_system: str | None = None,
        exclude_pseudonyms: Collection[str] = (),
    ) -> int:
        """How many patients have a condition code starting with one of
        `condition_prefixes` (optionally in `code_system`); all patients when none is given.
        Counted in SQL; only the number is returned. Raises `StoreError`."""
        try:
            with self._engine.connect() as conn:
                return cohort.count_patients(
                    conn,
                    condition_prefixes=condition_prefixes,
                    code_system=code_system,
                    exclude_pseudonyms=exclude_pseudonyms,
                )
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot count patients ({describe_db_error(exc)}): check the node's database"
            ) from None

    # -- keys ---------------------------------------------------------------------------

    def rotate_key(self) -> RotationReport:
        """Replace the KEK: re-wrap every data key in one transaction, then retire the old KEK.

        Safe against crashes at any step (see `medspace.store.rotation`). Afterwards the
        old KEK unwraps nothing. Raises `StoreWriteError` if the database fails (the old
        KEK stays in use) or `KeyMismatchError` if another process rotated first.
        """
        with self._keeper.lock():
            old = self._keys.kek
            if self._keeper.current().key_id != old.key_id:
                raise StoreError(
                    "the node's key file changed since this store was opened (another "
                    "process rotated the key?): reopen the node, then rotate"
                )
            new = Kek.generate()
            self._keeper.keep(old)
            self._keeper.make_current(new)
            try:
                count = rewrap(self._engine, old, new)
            except BaseException as exc:
                # The commit may have happened even if we saw an error (lost reply):
                # keep both KEKs and let `settle` pick the one the database records.
                self._keeper.keep(new)
                self._keeper.make_current(old)
                with suppress(Exception):
                    url = self._engine.url.render_as_string(hide_password=True)
                    kek = settle(self._engine, self._keeper, create=False, url_for_messages=url)
                    self._keys.use_kek(kek)
                if isinstance(exc, SQLAlchemyError):
                    raise StoreWriteError(
                        f"key rotation failed ({describe_db_error(exc)}); the store uses key "
                        f"{self.kek_id} and every data key is readable. Fix the cause and "
                        "rotate again"
                    ) from None
                raise
            self._keeper.discard(old.key_id)
            self._keys.use_kek(new)
        return RotationReport(old_kek_id=old.key_id, new_kek_id=new.key_id, rewrapped=count)

    def _cipher(self, conn: Connection, owner: str, what: str) -> AESGCM:
        found = self._keys.lookup(conn, [owner])
        if owner not in found:
            raise RecordNotFoundError(
                f"the data key of this {what} is missing (crypto-shredded?): its encrypted "
                "fields can no longer be read"
            )
        return found[owner]
