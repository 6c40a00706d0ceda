"""Model records <-> table rows, and canonical JSON for what the store encrypts.

Row builders return only the clear columns of a record; the ingest step adds the
sealed columns (identity, note text) and provenance. Kept here, in one place, so the
mapping from the model to the OMOP-shaped tables reads as a table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import fields, is_dataclass
from datetime import UTC, date, datetime
from typing import Any

from medspace.model import (
    Address,
    Allergy,
    Code,
    Condition,
    Drug,
    Encounter,
    Identity,
    Measurement,
    Note,
    Observation,
    Patient,
    Procedure,
    Record,
)

Row = dict[str, Any]


def split_when(value: datetime | date | None) -> tuple[date | None, datetime | None]:
    """OMOP-style (date, datetime) pair: the day as written, and the time in UTC if aware."""
    if value is None:
        return None, None
    if isinstance(value, datetime):
        day = value.date()
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return day, value
    return value, None


def _when(row: Row, name: str, value: datetime | date | None) -> None:
    row[f"{name}_date"], row[f"{name}_datetime"] = split_when(value)


def _code(row: Row, code: Code | None, prefix: str = "code") -> None:
    if code is None:
        row[f"{prefix}_system"] = row[prefix] = row[f"{prefix}_display"] = None
        row[f"{prefix}_known"] = None
    else:
        row[f"{prefix}_system"] = code.system
        row[prefix] = code.code
        row[f"{prefix}_display"] = code.display
        row[f"{prefix}_known"] = code.known


def flags_text(flags: tuple[str, ...]) -> str:
    """Flags as a JSON array (they are quality markers, never patient data)."""
    return json.dumps(list(flags)) if flags else "[]"


def _patient(r: Patient) -> Row:
    row: Row = {"sex": r.sex, "birth_date": r.birth_date}
    _when(row, "deceased", r.deceased)
    return row


def _encounter(r: Encounter) -> Row:
    row: Row = {"person_source_id": r.patient_id, "kind": r.kind}
    _when(row, "start", r.start)
    _when(row, "end", r.end)
    _code(row, r.code)
    return row


def _condition(r: Condition) -> Row:
    row: Row = {
        "person_source_id": r.patient_id,
        "encounter_source_id": r.encounter_id,
        "clinical_status": r.clinical_status,
    }
    _code(row, r.code)
    _when(row, "onset", r.onset)
    _when(row, "recorded", r.recorded)
    return row


def _drug(r: Drug) -> Row:
    row: Row = {
        "person_source_id": r.patient_id,
        "encounter_source_id": r.encounter_id,
        "kind": r.kind,
        "status": r.status,
        "dose": r.dose,
    }
    _code(row, r.code)
    _when(row, "start", r.start)
    _when(row, "end", r.end)
    return row


def _measurement(r: Measurement) -> Row:
    row: Row = {
        "person_source_id": r.patient_id,
        "encounter_source_id": r.encounter_id,
        "value": r.value,
        "value_text": r.value_text,
        "unit": r.unit,
        "ref_low": r.ref_low,
        "ref_high": r.ref_high,
    }
    _code(row, r.code)
    _when(row, "time", r.time)
    return row


def _observation(r: Observation) -> Row:
    row: Row = {
        "person_source_id": r.patient_id,
        "encounter_source_id": r.encounter_id,
        "value": r.value,
        "value_text": r.value_text,
        "unit": r.unit,
    }
    _code(row, r.code)
    _code(row, r.value_code, "value_code")
    _when(row, "time", r.time)
    return row


def _procedure(r: Procedure) -> Row:
    row: Row = {"person_source_id": r.patient_id, "encounter_source_id": r.encounter_id}
    _code(row, r.code)
    _when(row, "time", r.time)
    return row


def _allergy(r: Allergy) -> Row:
    row: Row = {
        "person_source_id": r.patient_id,
        "reaction": r.reaction,
        "criticality": r.criticality,
    }
    _code(row, r.code)
    _when(row, "recorded", r.recorded)
    return row


def _note(r: Note) -> Row:
    row: Row = {
        "person_source_id": r.patient_id,
        "encounter_source_id": r.encounter_id,
        "language": r.language,
    }
    _code(row, r.kind)
    _when(row, "time", r.time)
    return row


#: Record class -> builder of its clear columns.
CLEAR_COLUMNS: dict[type, Callable[[Any], Row]] = {
    Patient: _patient,
    Encounter: _encounter,
    Condition: _condition,
    Drug: _drug,
    Measurement: _measurement,
    Observation: _observation,
    Procedure: _procedure,
    Allergy: _allergy,
    Note: _note,
}

_IDENTITY_FIELDS = tuple(f.name for f in fields(Identity) if f.name != "address")
_ADDRESS_FIELDS = tuple(f.name for f in fields(Address))
# Built once: json.dumps with options builds a new encoder on every call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def identity_to_json(identity: Identity) -> bytes:
    """Canonical JSON of an identity (sorted keys, no spaces, UTF-8), the plaintext we seal."""
    doc: dict[str, Any] = {name: getattr(identity, name) for name in _IDENTITY_FIELDS}
    address = identity.address
    doc["address"] = (
        None if address is None else {name: getattr(address, name) for name in _ADDRESS_FIELDS}
    )
    return _CANONICAL.encode(doc).encode("utf-8", "surrogatepass")


def identity_from_json(data: bytes) -> Identity:
    """Inverse of `identity_to_json`."""
    doc = json.loads(data.decode("utf-8", "surrogatepass"))
    address = doc.pop("address", None)
    return Identity(**doc, address=None if address is None else Address(**address))


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        doc = {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
        return {"type": type(value).__name__, **doc}
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def records_to_json(records: Iterable[Record]) -> bytes:
    """Canonical JSON of whole records: what a quarantined duplicate unit keeps as raw bytes."""
    doc = [_jsonable(r) for r in records]
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, indent=1).encode()
