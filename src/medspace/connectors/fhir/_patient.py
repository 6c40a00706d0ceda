"""FHIR Patient -> `Patient` with its `Identity` (direct identifiers, stored encrypted).

Identifier rules (Patient.identifier, by system or by v2-0203 type code):
- US SSN: system `http://hl7.org/fhir/sid/us-ssn` or type `SS` -> national_id, "US-SSN";
- Chinese resident ID (GB 11643): system `CN_RID_SYSTEM` (there is no published FHIR URI;
  MedSpace names its own, as `medspace.synth` writes it) or type `NNCHN` (v2-0203 "NN" +
  ISO 3166 "CHN") -> national_id, "CN-RID";
- any other national id (type `NI` or `NN` + country) -> national_id, its system as given;
- type `MR` -> mrn.
Other identifiers (driver's licence, passport, the generator's own) have no place in
`Identity` and are not kept.
"""

from __future__ import annotations

from medspace.connectors._unit import UnitRejected
from medspace.connectors.fhir._values import (
    Json,
    concept_codes,
    get_date,
    get_datetime,
    get_list,
    get_str,
)
from medspace.model import Address, Identity, Patient, Record, Sex

US_SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
#: Identifier.system MedSpace uses for Chinese resident IDs (type code NNCHN is also accepted).
CN_RID_SYSTEM = "https://medspace.example/fhir/sid/cn-rid"
CN_RID_TYPE = "NNCHN"

#: Flags this mapper may set (none carries a value).
DECEASED_DATE_UNKNOWN = "deceased-date-unknown"
NAME_TEXT_ONLY = "name-text-only"

_GENDERS: dict[str, Sex] = {
    "male": "male",
    "female": "female",
    "other": "other",
    "unknown": "unknown",
}


def _identifiers(res: Json) -> dict[str, str | None]:
    found: dict[str, str | None] = {"national_id": None, "national_id_system": None, "mrn": None}
    for i, ident in enumerate(get_list(res, "identifier", "Patient")):
        path = f"Patient.identifier[{i}]"
        if not isinstance(ident, dict):
            raise UnitRejected(f"{path}: must be a JSON object")
        value = get_str(ident, "value", path)
        if not value:
            continue
        system = get_str(ident, "system", path)
        types = concept_codes(ident.get("type"))
        if found["national_id"] is None:
            national_system: str | None = None
            if system == US_SSN_SYSTEM or "SS" in types:
                national_system = "US-SSN"
            elif system == CN_RID_SYSTEM or CN_RID_TYPE in types:
                national_system = "CN-RID"
            else:
                national = sorted(t for t in types if t == "NI" or (len(t) == 5 and t[:2] == "NN"))
                if national:
                    national_system = system or national[0]
            if national_system is not None:
                found["national_id"], found["national_id_system"] = value, national_system
                continue
        if found["mrn"] is None and "MR" in types:
            found["mrn"] = value
    return found


def _pick(items: list[object], path: str, preferred: tuple[str, ...]) -> tuple[Json, str] | None:
    """The first element whose `use` is preferred, else the first element."""
    chosen: tuple[Json, str] | None = None
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise UnitRejected(f"{path}[{i}]: must be a JSON object")
        if item.get("use") in preferred:
            return item, f"{path}[{i}]"
        if chosen is None:
            chosen = (item, f"{path}[{i}]")
    return chosen


def _name(res: Json, flags: list[str]) -> tuple[str | None, str | None]:
    picked = _pick(get_list(res, "name", "Patient"), "Patient.name", ("official", "usual"))
    if picked is None:
        return None, None
    name, path = picked
    family = get_str(name, "family", path)
    given_parts = get_list(name, "given", path)
    if not all(isinstance(g, str) for g in given_parts):
        raise UnitRejected(f"{path}.given: must be an array of strings")
    given = " ".join(given_parts) or None
    if family is None and given is None:
        text = get_str(name, "text", path)
        if text:
            flags.append(NAME_TEXT_ONLY)
            return None, text
    return family, given


def _telecom(res: Json) -> tuple[str | None, str | None]:
    phone = email = None
    for i, contact in enumerate(get_list(res, "telecom", "Patient")):
        path = f"Patient.telecom[{i}]"
        if not isinstance(contact, dict):
            raise UnitRejected(f"{path}: must be a JSON object")
        system = get_str(contact, "system", path)
        value = get_str(contact, "value", path)
        if not value:
            continue
        if phone is None and system in ("phone", "sms"):
            phone = value
        elif email is None and system == "email":
            email = value
    return phone, email


def _address(res: Json) -> Address | None:
    picked = _pick(get_list(res, "address", "Patient"), "Patient.address", ("home",))
    if picked is None:
        return None
    addr, path = picked
    lines = get_list(addr, "line", path)
    if not all(isinstance(line, str) for line in lines):
        raise UnitRejected(f"{path}.line: must be an array of strings")
    return Address(
        line=", ".join(lines) or None,
        district=get_str(addr, "district", path),
        city=get_str(addr, "city", path),
        state=get_str(addr, "state", path),
        postal_code=get_str(addr, "postalCode", path),
        country=get_str(addr, "country", path),
    )


def map_patient(res: Json, rid: str) -> tuple[Record, ...]:
    """Map a FHIR Patient; rejects an invalid gender code or birth/death date."""
    flags: list[str] = []
    gender = get_str(res, "gender", "Patient")
    sex: Sex = "unknown"
    if gender is not None:
        if gender not in _GENDERS:
            raise UnitRejected("Patient.gender: not one of male|female|other|unknown")
        sex = _GENDERS[gender]
    birth = get_date(res, "birthDate", "Patient", flags)
    deceased = get_datetime(res, "deceasedDateTime", "Patient", flags)
    if deceased is None and res.get("deceasedBoolean") is True:
        flags.append(DECEASED_DATE_UNKNOWN)
    family, given = _name(res, flags)
    phone, email = _telecom(res)
    ids = _identifiers(res)
    identity = Identity(
        family_name=family,
        given_name=given,
        national_id=ids["national_id"],
        national_id_system=ids["national_id_system"],
        mrn=ids["mrn"],
        phone=phone,
        email=email,
        address=_address(res),
    )
    return (Patient(rid, sex, birth, deceased, identity, tuple(flags)),)
