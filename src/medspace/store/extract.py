"""Reading records back out of the store: table rows -> `medspace.model` records.

The inverse of `medspace.store.rows`: clear columns become record fields, the sealed
identity and note text are decrypted with the patient's data key. Rows are read in
batches by primary key (keyset paging), so memory stays flat for any table size.

Dates come back as the store keeps them: a `datetime` where the source gave a time
(aware times were stored in UTC, so they come back naive, in UTC), else a `date`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import fields
from datetime import date, datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, RowMapping, select

from medspace.errors import UsageError
from medspace.model import KIND_OF, Code, Note, Record
from medspace.store import crypto, rows
from medspace.store.errors import RecordNotFoundError
from medspace.store.keyring import DataKeys, patient_owner
from medspace.store.schema import TABLE_OF

#: Record kinds in the order an extract reads them: patients before their records.
KINDS: tuple[str, ...] = tuple(TABLE_OF)
_CLASS_OF: dict[str, type] = {kind: cls for cls, kind in KIND_OF.items()}
_SEALED = frozenset({"identity_sealed", "text_sealed"})


def _code(row: RowMapping, prefix: str) -> Code | None:
    if row[f"{prefix}_system"] is None:
        return None
    return Code(
        system=row[f"{prefix}_system"],
        code=row[prefix],
        display=row[f"{prefix}_display"],
        known=bool(row[f"{prefix}_known"]),
    )


def _when(row: RowMapping, name: str) -> datetime | date | None:
    moment: datetime | None = row[f"{name}_datetime"]
    return moment if moment is not None else row[f"{name}_date"]


def record_from_row(kind: str, row: RowMapping, sealed: Any = None) -> Record:
    """Build the record of `kind` from its row's clear columns; `sealed` is the decrypted
    `Identity` (patients) or note text (notes)."""
    cls = _CLASS_OF[kind]
    values: dict[str, Any] = {}
    for f in fields(cls):
        name = f.name
        if name in ("identity", "text"):
            values[name] = sealed
        elif name == "patient_id":
            values[name] = row["person_source_id"]
        elif name == "encounter_id":
            values[name] = row["encounter_source_id"]
        elif name == "flags":
            values[name] = tuple(json.loads(row["flags"]))
        elif name in ("code", "value_code") or (cls is Note and name == "kind"):
            values[name] = _code(row, "code" if name == "kind" else name)
        elif f"{name}_date" in row:
            values[name] = _when(row, name)
        else:
            values[name] = row[name]
    record: Record = cls(**values)
    return record


def _open(cipher: AESGCM | None, kind: str, row: RowMapping) -> Any:
    if kind not in ("patient", "note"):
        return None
    if cipher is None:
        raise RecordNotFoundError(
            f"the data key of a {kind} is missing (crypto-shredded?): its encrypted fields "
            "can no longer be read; remove its rows before extracting"
        )
    if kind == "patient":
        aad = crypto.aad("person", row["source_id"], "identity")
        plain = crypto.open_sealed(cipher, row["identity_sealed"], aad, "a patient identity")
        return rows.identity_from_json(plain)
    aad = crypto.aad("note", row["source_id"], "text")
    plain = crypto.open_sealed(cipher, row["text_sealed"], aad, "a note text")
    return plain.decode("utf-8", "surrogatepass")


def iter_records(engine: Engine, keys: DataKeys, kind: str, *, batch_size: int) -> Iterator[Record]:
    """Yield every record of `kind` in primary-key order, `batch_size` rows per query.

    Raises `UsageError` for an unknown kind, `RecordNotFoundError` when a patient's data
    key is gone, `KeyMismatchError` / `TamperedDataError` like the other readers.
    """
    if kind not in TABLE_OF:
        raise UsageError(f"unknown record kind {kind!r}: use one of {', '.join(KINDS)}")
    if batch_size < 1:
        raise UsageError("batch_size must be at least 1")
    table = TABLE_OF[kind]
    wanted = [c for c in table.c if c.name not in ("ingest_run_id", "pseudonym")]
    if kind not in ("patient", "note"):
        wanted = [c for c in wanted if c.name not in _SEALED]
    owner_column = "source_id" if kind == "patient" else "person_source_id"
    last_id: int | None = None
    while True:
        query = select(*wanted).order_by(table.c.id).limit(batch_size)
        if last_id is not None:
            query = query.where(table.c.id > last_id)
        with engine.connect() as conn:
            batch = [r._mapping for r in conn.execute(query)]
            ciphers: dict[str, AESGCM] = {}
            if kind in ("patient", "note"):
                owners = {patient_owner(r[owner_column]) for r in batch}
                ciphers = keys.lookup(conn, owners)
        if not batch:
            return
        for row in batch:
            cipher = ciphers.get(patient_owner(row[owner_column]))
            yield record_from_row(kind, row, _open(cipher, kind, row))
        last_id = batch[-1]["id"]
        if len(batch) < batch_size:
            return
