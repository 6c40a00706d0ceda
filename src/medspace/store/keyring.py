"""Where the KEK comes from (`KekKeeper`) and the per-patient data keys it wraps."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, select

from medspace.store import crypto
from medspace.store.crypto import Kek
from medspace.store.errors import KeyMismatchError
from medspace.store.schema import data_key

#: data_key.source_id of the key that seals quarantined raw bytes.
QUARANTINE_OWNER = "node:quarantine"

_CHUNK = 500  # ids per IN (...) query; well under SQLite's and PostgreSQL's bind limits


def patient_owner(patient_source_id: str) -> str:
    """data_key.source_id of a patient's data key."""
    return "patient:" + patient_source_id


class KekKeeper(Protocol):
    """Keeps the node's KEK outside the database (files in the node directory).

    Rotation keeps the old KEK as *retired* until the database no longer needs it, so a
    crash at any step leaves a KEK that opens the store.
    """

    def current(self) -> Kek:
        """The KEK in use. Raises `medspace.errors.ConfigError` if it cannot be read."""
        ...

    def retired(self) -> list[Kek]:
        """KEKs kept by a rotation that has not finished."""
        ...

    def keep(self, kek: Kek) -> None:
        """Durably keep `kek` as a retired KEK."""
        ...

    def make_current(self, kek: Kek) -> None:
        """Atomically and durably make `kek` the current KEK."""
        ...

    def discard(self, key_id: str) -> None:
        """Delete the retired KEK `key_id` (no-op if absent)."""
        ...

    def lock(self) -> AbstractContextManager[None]:
        """Exclusive lock (across processes) held while KEK files change."""
        ...


class DataKeys:
    """Per-patient data-encryption keys: unwrapped on demand, cached, created in batches.

    New keys become visible to later lookups only through `remember`, called after the
    transaction that inserted them commits, so a rolled-back batch never leaves a cached
    key whose wrapped copy is not in the database. The cache is guarded by a lock, so
    readers in several threads may share one store.
    """

    def __init__(self, kek: Kek, cache_size: int = 20_000) -> None:
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, AESGCM] = OrderedDict()
        self._cache_size = cache_size
        self.use_kek(kek)

    @property
    def kek(self) -> Kek:
        """The KEK data keys are wrapped under."""
        return self._kek

    def use_kek(self, kek: Kek) -> None:
        """Switch to `kek` (after a rotation). Cached data keys stay valid."""
        self._kek = kek
        self._kek_cipher = AESGCM(kek.secret)

    def _unwrap(self, owner: str, kek_id: str, wrapped: bytes) -> AESGCM:
        if kek_id != self._kek.key_id:
            raise KeyMismatchError(
                "cannot unwrap data keys: the key file does not match this store (data keys "
                f"are wrapped under key {kek_id}, this node loaded key {self._kek.key_id}); "
                "reopen the node if another process rotated the key"
            )
        return AESGCM(crypto.unwrap_data_key(self._kek_cipher, wrapped, owner))

    def lookup(self, conn: Connection, owners: Iterable[str]) -> dict[str, AESGCM]:
        """Ciphers for the owners that already have a data key (others are left out)."""
        found: dict[str, AESGCM] = {}
        missing: list[str] = []
        with self._lock:
            for owner in owners:
                cipher = self._cache.get(owner)
                if cipher is None:
                    missing.append(owner)
                else:
                    self._cache.move_to_end(owner)
                    found[owner] = cipher
        for start in range(0, len(missing), _CHUNK):
            chunk = missing[start : start + _CHUNK]
            query = select(data_key.c.source_id, data_key.c.kek_id, data_key.c.wrapped).where(
                data_key.c.source_id.in_(chunk)
            )
            for owner, kek_id, wrapped in conn.execute(query):
                cipher = self._unwrap(owner, kek_id, wrapped)
                found[owner] = cipher
                self._put(owner, cipher)
        return found

    def create(self, owners: Iterable[str]) -> tuple[dict[str, AESGCM], list[dict[str, Any]]]:
        """Fresh data keys for `owners`: their ciphers and the data_key rows to insert."""
        now = datetime.now(UTC).replace(tzinfo=None)
        ciphers: dict[str, AESGCM] = {}
        rows: list[dict[str, Any]] = []
        for owner in owners:
            dek = crypto.new_data_key()
            ciphers[owner] = AESGCM(dek)
            rows.append(
                {
                    "source_id": owner,
                    "kek_id": self._kek.key_id,
                    "wrapped": crypto.wrap_data_key(self._kek_cipher, dek, owner),
                    "created": now,
                }
            )
        return ciphers, rows

    def remember(self, ciphers: dict[str, AESGCM]) -> None:
        """Cache keys whose rows are now committed."""
        for owner, cipher in ciphers.items():
            self._put(owner, cipher)

    def forget_all(self) -> None:
        """Drop every cached key (e.g. before crypto-shredding)."""
        with self._lock:
            self._cache.clear()

    def _put(self, owner: str, cipher: AESGCM) -> None:
        with self._lock:
            self._cache[owner] = cipher
            self._cache.move_to_end(owner)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
