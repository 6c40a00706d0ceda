"""The node store: OMOP-shaped tables on SQLAlchemy 2 (SQLite default, PostgreSQL by URL).

Direct identifiers and note text are stored only as AES-256-GCM ciphertext under one data
key per patient, wrapped by the node's key-encryption key (envelope encryption, so one
patient can be crypto-shredded and the KEK rotated without re-encrypting data). Patients
get keyed pseudonyms (HMAC-SHA256) that other components use instead of source ids.

Open a store through `medspace.node.open_node(DIR).store`; `NodeStore.open` is for callers
that hold the keys themselves. The public API:

- `NodeStore.ingest(outcomes, *, source, progress=None) -> IngestReport`: connector outcomes
  in (one per source unit); Parsed records upserted by `source_id`, Skipped counted by type,
  Rejected and conflicting in-run repeats quarantined; received == stored + skipped +
  quarantined, always. `progress(n)` gets per-batch increments.
- `stats() -> StoreStats`, `quarantine(limit=None) -> list[QuarantineEntry]`,
  `read_quarantine_raw(id) -> bytes` (stewards only), `patient_identity(source_id) -> Identity`,
  `note_text(source_id) -> str`, `pseudonym(source_id) -> str`, `rotate_key() -> RotationReport`.
- Errors: `KeyMismatchError` / `TamperedDataError` (both `CryptoError`), `StoreConfigError`
  (`ConfigError`), `StoreError`, `StoreWriteError`, `RecordNotFoundError` (`NotFoundError`).
"""

from medspace.store.crypto import Kek
from medspace.store.errors import (
    AccountingError,
    KeyMismatchError,
    RecordNotFoundError,
    StoreConfigError,
    StoreError,
    StoreWriteError,
    TamperedDataError,
)
from medspace.store.ingest import PatientIndexer
from medspace.store.keyring import KekKeeper
from medspace.store.nodestore import DEFAULT_BATCH_SIZE, NodeStore
from medspace.store.reports import IngestReport, QuarantineEntry, RotationReport, StoreStats

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "AccountingError",
    "IngestReport",
    "Kek",
    "KekKeeper",
    "KeyMismatchError",
    "NodeStore",
    "PatientIndexer",
    "QuarantineEntry",
    "RecordNotFoundError",
    "RotationReport",
    "StoreConfigError",
    "StoreError",
    "StoreStats",
    "StoreWriteError",
    "TamperedDataError",
]
