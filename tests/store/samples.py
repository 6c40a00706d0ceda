"""Model records and outcomes for store tests (built directly, no connectors).

The identifiers are synthetic but shaped like real ones, so that a scan of the database
for them is a meaningful test.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from medspace.connectors.base import Parsed, Rejected, Skipped
from medspace.model import (
    Address,
    Code,
    Condition,
    Encounter,
    Identity,
    Measurement,
    Note,
    Patient,
)

SOURCE = "export/test.ndjson"

#: Direct identifiers that must never appear in the clear in a database.
SECRETS = {
    "family name": "Zhangwei-Testperson",
    "given name": "Xiuying",
    "chinese name": "欧阳娜娜",
    "national id": "110101198507153311",
    "mrn": "MRN-99887766",
    "phone": "+86-138-0013-8000",
    "email": "ouyang.test@example.org",
    "street": "88 Jianguo Road Apt 1701",
    "note phrase": "reports chest pain after the argument with her landlord",
    "chinese note": "患者自述胸痛三天",
    "rejected raw": "RAW-UNIT-WITH-NAME-Qiansan",
}


def identity(n: int = 0) -> Identity:
    """A full identity; n=0 carries the SECRETS values."""
    if n == 0:
        return Identity(
            family_name=SECRETS["family name"],
            given_name=SECRETS["given name"] + " " + SECRETS["chinese name"],
            national_id=SECRETS["national id"],
            national_id_system="CN-RID",
            mrn=SECRETS["mrn"],
            phone=SECRETS["phone"],
            email=SECRETS["email"],
            address=Address(
                line=SECRETS["street"], district="Chaoyang", city="Beijing", country="CN"
            ),
        )
    return Identity(
        family_name=f"Family{n}",
        given_name=f"Given{n}",
        national_id=f"ID{n:016d}",
        national_id_system="CN-RID",
        phone=f"555-{n:07d}",
    )


def patient(n: int = 0, **changes: object) -> Patient:
    """Patient P<n> with identity(n)."""
    fields: dict[str, object] = {
        "source_id": f"P{n}",
        "sex": "female",
        "birth_date": date(1985, 7, 15),
        "identity": identity(n),
    }
    fields.update(changes)
    return Patient(**fields)  # type: ignore[arg-type]


def note(n: int, patient_n: int = 0, text: str | None = None) -> Note:
    """Note N<n> of patient P<patient_n>."""
    body = text or f"Visit {n}: patient {SECRETS['note phrase']}. {SECRETS['chinese note']}。"
    return Note(
        source_id=f"N{n}",
        patient_id=f"P{patient_n}",
        text=body,
        time=datetime(2024, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=8))),
        language="en",
    )


def condition(n: int, patient_n: int = 0, code: str = "I20.9") -> Condition:
    """Condition C<n> (ICD-10) of patient P<patient_n>."""
    return Condition(
        source_id=f"C{n}",
        patient_id=f"P{patient_n}",
        code=Code("ICD-10", code, "Angina pectoris"),
        encounter_id=f"E{n}",
        onset=date(2024, 3, 1),
    )


def measurement(n: int, patient_n: int = 0, value: float = 5.4) -> Measurement:
    """Glucose measurement M<n> of patient P<patient_n>."""
    return Measurement(
        source_id=f"M{n}",
        patient_id=f"P{patient_n}",
        code=Code("LOINC", "2345-7", "Glucose"),
        time=datetime(2024, 3, 1, 1, 30, tzinfo=UTC),
        value=value,
        unit="mmol/L",
        ref_low=3.9,
        ref_high=6.1,
    )


def encounter(n: int, patient_n: int = 0) -> Encounter:
    """Outpatient encounter E<n>."""
    return Encounter(
        source_id=f"E{n}",
        patient_id=f"P{patient_n}",
        kind="outpatient",
        start=datetime(2024, 3, 1, 9, 0),
    )


def parsed(position: int, *records: object) -> Parsed:
    """One parsed unit at `line <position>`."""
    return Parsed(SOURCE, f"line {position}", tuple(records))  # type: ignore[arg-type]


def skipped(position: int, unit_type: str = "Claim") -> Skipped:
    """One skipped unit."""
    return Skipped(SOURCE, f"line {position}", unit_type)


def rejected(position: int, raw: bytes | None = None) -> Rejected:
    """One rejected unit whose raw bytes carry an identifier."""
    body = raw if raw is not None else b'{"name": "' + SECRETS["rejected raw"].encode() + b'"'
    return Rejected(SOURCE, f"line {position}", "invalid JSON: unterminated object", body)
