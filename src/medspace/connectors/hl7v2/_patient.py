"""PID -> `Patient` with its `Identity`.

Patient id: the PID-3 repetition with identifier type PI (patient internal identifier:
the record key, what FHIR calls Patient.id), else the one with type MR, else the first
with an id (PID-2 as a last resort). The MR repetition is the mrn.

Placeholder demographics are common in test feeds (the Epic sample sends "DOB" and
"SEX"): an unreadable PID-7 or PID-29 keeps the message and flags the patient
`invalid-birth-date` / `invalid-death-date` (the results are still worth keeping); an
unknown PID-8 maps to "unknown" with `invalid-sex`.
"""

from __future__ import annotations

from datetime import date, datetime

from medspace.connectors._dates import parse_hl7_datetime
from medspace.connectors._unit import PARTIAL_DATE, UnitRejected
from medspace.connectors.hl7v2._parse import Segment
from medspace.model import Address, Identity, Patient, Sex

INVALID_BIRTH_DATE = "invalid-birth-date"
INVALID_DEATH_DATE = "invalid-death-date"
INVALID_SEX = "invalid-sex"
DECEASED_DATE_UNKNOWN = "deceased-date-unknown"

# HL7 table 0001 administrative sex.
_SEX: dict[str, Sex] = {"M": "male", "F": "female", "O": "other", "A": "other", "U": "unknown"}
_CN_RID_TYPE = "NNCHN"


def _patient_id(pid: Segment) -> tuple[str, str | None, list[list[str]]]:
    """(source id, mrn, all PID-3 repetitions as components)."""
    reps = [pid.components(r) + [""] * 5 for r in pid.repetitions(3)]
    usable = [r for r in reps if r[0] and r[0] != '""']
    chosen = (
        next((r for r in usable if r[4] == "PI"), None)
        or next((r for r in usable if r[4] == "MR"), None)
        or next(iter(usable), None)
    )
    mr = next((r[0] for r in usable if r[4] == "MR"), None)
    if chosen is None:
        fallback = pid.value(2)
        if not fallback:
            raise UnitRejected(f"{pid.where(3)}: patient identifier list is empty")
        return fallback, None, reps
    mrn = mr if mr is not None else (chosen[0] if chosen[4] == "" else None)
    return chosen[0], mrn, reps


def _national_id(pid: Segment, reps: list[list[str]]) -> tuple[str | None, str | None]:
    for r in reps:
        if not r[0]:
            continue
        if r[4] == "SS":
            return r[0], "US-SSN"
        if r[4] == _CN_RID_TYPE:
            return r[0], "CN-RID"
        if r[4] == "NI" or (len(r[4]) == 5 and r[4].startswith("NN")):
            return r[0], r[3] or r[4]
    ssn = pid.value(19)
    return (ssn, "US-SSN") if ssn else (None, None)


def _name(pid: Segment) -> tuple[str | None, str | None]:
    reps = [pid.components(r) + [""] * 7 for r in pid.repetitions(5)]
    if not reps:
        return None, None
    name = next((r for r in reps if r[6] == "L"), reps[0])
    given = " ".join(p for p in (name[1], name[2]) if p and p != '""')
    family = name[0] if name[0] and name[0] != '""' else None
    return family, given or None


def _address(pid: Segment) -> Address | None:
    reps = pid.repetitions(11)
    if not reps:
        return None
    c = pid.components(reps[0]) + [""] * 9

    def v(i: int) -> str | None:
        return c[i] if c[i] and c[i] != '""' else None

    line = ", ".join(p for p in (c[0], c[1]) if p and p != '""') or None
    # District: XAD-8 "other geographic designation" (free text, e.g. 徐汇区), else XAD-9
    # "county/parish code".
    return Address(line, v(7) or v(8), v(2), v(3), v(4), v(5))


def _telecom(pid: Segment) -> tuple[str | None, str | None]:
    phone = email = None
    for n in (13, 14):
        for raw in pid.repetitions(n):
            c = pid.components(raw) + [""] * 12
            if c[1] == "NET" or c[2] == "Internet":
                email = email or c[3] or None
            elif phone is None:
                local = "".join(p for p in (c[5], c[6]) if p)
                phone = c[0] or c[11] or local or None
    return phone, email


def _date_or_flag(pid: Segment, n: int, flag: str, flags: list[str]) -> datetime | date | None:
    text = pid.value(n)
    if text is None:
        return None
    try:
        value, partial = parse_hl7_datetime(text.strip())
    except ValueError:
        flags.append(flag)
        return None
    if partial and PARTIAL_DATE not in flags:
        flags.append(PARTIAL_DATE)
    return value


def map_pid(pid: Segment) -> Patient:
    """Map a PID segment; rejects only a PID without any patient identifier."""
    flags: list[str] = []
    source_id, mrn, reps = _patient_id(pid)
    national_id, national_system = _national_id(pid, reps)
    birth = _date_or_flag(pid, 7, INVALID_BIRTH_DATE, flags)
    birth_date = birth.date() if isinstance(birth, datetime) else birth
    sex_code = (pid.value(8) or "").strip().upper()
    sex: Sex = _SEX.get(sex_code, "unknown")
    if sex_code and sex_code not in _SEX and sex_code != "N":
        flags.append(INVALID_SEX)
    deceased = _date_or_flag(pid, 29, INVALID_DEATH_DATE, flags)
    if deceased is None and (pid.value(30) or "").upper() == "Y":
        flags.append(DECEASED_DATE_UNKNOWN)
    family, given = _name(pid)
    phone, email = _telecom(pid)
    identity = Identity(
        family_name=family,
        given_name=given,
        national_id=national_id,
        national_id_system=national_system,
        mrn=mrn,
        phone=phone,
        email=email,
        address=_address(pid),
    )
    return Patient(source_id, sex, birth_date, deceased, identity, tuple(flags))
