"""Errors of the node store. Messages say what to do next and never quote patient data."""

from __future__ import annotations

from medspace.errors import ConfigError, CryptoError, MedSpaceError, NotFoundError


class StoreError(MedSpaceError):
    """The store could not do what was asked (database unreachable, write failed)."""


class StoreWriteError(StoreError):
    """The database refused a write; the batch in flight was rolled back as a whole."""


class StoreConfigError(ConfigError):
    """The database URL or the store's schema is unusable (unsupported database, foreign schema)."""


class KeyMismatchError(CryptoError):
    """The key-encryption key does not match the one that wrapped this store's data keys."""


class TamperedDataError(CryptoError):
    """A ciphertext failed authentication: it was altered, swapped or belongs to another row."""


class RecordNotFoundError(NotFoundError):
    """A patient, note or quarantine entry that was named is not in the store."""


class AccountingError(StoreError):
    """Ingest counts do not balance (received != stored + skipped + quarantined): a bug."""
