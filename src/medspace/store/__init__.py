"""The node store: OMOP-shaped tables on SQLAlchemy 2 (SQLite default, PostgreSQL by URL).

Direct identifiers and note text are stored only as AES-256-GCM ciphertext under one data
key per patient, wrapped by the node's key-encryption key (envelope encryption, so one
patient can be crypto-shredded and the KEK rotated without re-encrypting data). Patients
get keyed pseudonyms (HMAC-SHA256) that other components use instead of source ids.

Open a store through `medspace.node.open_node(DIR).store`; `NodeStore.open` is for callers
that hold the keys themselves.
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
    "QuarantineEntry",
    "RecordNotFoundError",
    "RotationReport",
    "StoreConfigError",
    "StoreError",
    "StoreStats",
    "StoreWriteError",
    "TamperedDataError",
]
