"""FHIR Encounter, Condition, MedicationRequest/Statement, Procedure, AllergyIntolerance ->
model records. Each mapper takes the resource, its id and the file's `References`, and
rejects a resource without the elements the record needs (subject/patient, code)."""

from __future__ import annotations

from datetime import date, datetime

from medspace.connectors._dates import as_datetime
from medspace.connectors._unit import UnitRejected
from medspace.connectors.fhir._refs import References
from medspace.connectors.fhir._values import (
    Json,
    concept_codes,
    concept_text,
    concept_to_code,
    first_obj,
    get_datetime,
    get_list,
    get_number,
    get_obj,
    get_str,
    period_start_end,
)
from medspace.model import (
    UNKNOWN_CODE_SYSTEM,
    Allergy,
    Code,
    Condition,
    Drug,
    Encounter,
    Procedure,
    Record,
)

# v3 ActCode encounter classes (R4 Encounter.class) -> MedSpace encounter kind.
_ENCOUNTER_KIND = {
    "IMP": "inpatient",
    "ACUTE": "inpatient",
    "NONAC": "inpatient",
    "SS": "inpatient",
    "AMB": "outpatient",
    "OBSENC": "outpatient",
    "PRENC": "outpatient",
    "EMER": "emergency",
}


def subject(res: Json, rtype: str, refs: References, key: str = "subject") -> str:
    """The id of the Patient the resource is about (required)."""
    patient_id = refs.resolve(res.get(key), f"{rtype}.{key}", "Patient", required=True)
    assert patient_id is not None  # required=True never returns None
    return patient_id


def encounter_of(res: Json, rtype: str, refs: References, key: str = "encounter") -> str | None:
    """The id of the Encounter the resource belongs to, if it names one."""
    return refs.resolve(res.get(key), f"{rtype}.{key}", "Encounter", required=False)


def required_code(res: Json, key: str, rtype: str, flags: list[str]) -> Code:
    """The `Code` of a required CodeableConcept element."""
    concept = res.get(key)
    if concept is None:
        raise UnitRejected(f"{rtype}.{key}: required")
    return concept_to_code(concept, f"{rtype}.{key}", flags)


def optional_code(concept: object, path: str, flags: list[str]) -> Code | None:
    """The `Code` of an optional CodeableConcept, None when absent or text-only."""
    if concept is None or not concept_codes(concept):
        return None
    return concept_to_code(concept, path, flags)


def _status_code(res: Json, key: str, rtype: str) -> str | None:
    """The first code of a status CodeableConcept (clinicalStatus), None when absent."""
    concept = get_obj(res, key, rtype)
    if concept is None:
        return None
    for coding in get_list(concept, "coding", f"{rtype}.{key}"):
        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
            return str(coding["code"])
    return None


def _timepoint(res: Json, rtype: str, stem: str, flags: list[str]) -> datetime | date | None:
    """`<stem>DateTime`, else the start of `<stem>Period`."""
    value = get_datetime(res, f"{stem}DateTime", rtype, flags)
    if value is None:
        value = period_start_end(res, f"{stem}Period", rtype, flags)[0]
    return value


def map_encounter(res: Json, rid: str, refs: References) -> tuple[Record, ...]:
    """Encounter: class -> kind, period -> start/end, type[0] -> code."""
    flags: list[str] = []
    patient_id = subject(res, "Encounter", refs)
    kind = "unknown"
    klass = res.get("class")
    if klass is not None:
        if not isinstance(klass, dict):
            raise UnitRejected("Encounter.class: must be a Coding object (FHIR R4)")
        kind = _ENCOUNTER_KIND.get(str(klass.get("code")), "unknown")
    start, end = period_start_end(res, "period", "Encounter", flags)
    types = res.get("type")
    code = None
    if types is not None:
        if not isinstance(types, list):
            raise UnitRejected("Encounter.type: must be a JSON array")
        if types:
            code = optional_code(types[0], "Encounter.type[0]", flags)
    return (
        Encounter(
            rid,
            patient_id,
            kind,
            as_datetime(start) if start is not None else None,
            as_datetime(end) if end is not None else None,
            code,
            tuple(flags),
        ),
    )


def map_condition(res: Json, rid: str, refs: References) -> tuple[Record, ...]:
    """Condition: code and subject required; onset[x] (dateTime or Period), recordedDate."""
    flags: list[str] = []
    patient_id = subject(res, "Condition", refs)
    code = required_code(res, "code", "Condition", flags)
    return (
        Condition(
            rid,
            patient_id,
            code,
            encounter_of(res, "Condition", refs),
            _timepoint(res, "Condition", "onset", flags),
            get_datetime(res, "recordedDate", "Condition", flags),
            _status_code(res, "clinicalStatus", "Condition"),
            tuple(flags),
        ),
    )


def _medication(res: Json, rtype: str, refs: References, flags: list[str]) -> Code:
    if "medicationCodeableConcept" in res:
        return required_code(res, "medicationCodeableConcept", rtype, flags)
    if "medicationReference" in res:
        code = refs.medication(
            res["medicationReference"], res, f"{rtype}.medicationReference", flags
        )
        if not code.known and UNKNOWN_CODE_SYSTEM not in flags:
            flags.append(UNKNOWN_CODE_SYSTEM)
        return code
    raise UnitRejected(f"{rtype}.medication[x]: required")


def _dose(dosage: Json | None, path: str) -> str | None:
    if dosage is None:
        return None
    text = get_str(dosage, "text", path)
    if text:
        return text
    rate = first_obj(dosage, "doseAndRate", path)
    if rate is None:
        return None
    quantity = get_obj(rate, "doseQuantity", f"{path}.doseAndRate[0]")
    if quantity is None:
        return None
    qpath = f"{path}.doseAndRate[0].doseQuantity"
    value = get_number(quantity, "value", qpath)
    if value is None:
        return None
    unit = get_str(quantity, "unit", qpath) or get_str(quantity, "code", qpath) or ""
    return f"{value:g} {unit}".strip()


def _bounds(
    dosage: Json | None, path: str, flags: list[str]
) -> tuple[datetime | date | None, datetime | date | None]:
    """(start, end) of Dosage.timing.repeat.boundsPeriod: when the drug is to be taken."""
    if dosage is None:
        return None, None
    timing = get_obj(dosage, "timing", path)
    repeat = get_obj(timing, "repeat", f"{path}.timing") if timing else None
    if repeat is None:
        return None, None
    return period_start_end(repeat, "boundsPeriod", f"{path}.timing.repeat", flags)


def map_medication_request(res: Json, rid: str, refs: References) -> tuple[Record, ...]:
    """MedicationRequest -> Drug(kind="request"): authoredOn (else the first dosage's
    boundsPeriod start) is the start, that boundsPeriod's end the end."""
    flags: list[str] = []
    rtype = "MedicationRequest"
    patient_id = subject(res, rtype, refs)
    code = _medication(res, rtype, refs, flags)
    dosage = first_obj(res, "dosageInstruction", rtype)
    start, end = _bounds(dosage, f"{rtype}.dosageInstruction[0]", flags)
    authored = get_datetime(res, "authoredOn", rtype, flags)
    return (
        Drug(
            rid,
            patient_id,
            code,
            encounter_of(res, rtype, refs),
            authored if authored is not None else start,
            end,
            "request",
            get_str(res, "status", rtype),
            _dose(dosage, f"{rtype}.dosageInstruction[0]"),
            tuple(flags),
        ),
    )


def map_medication_statement(res: Json, rid: str, refs: References) -> tuple[Record, ...]:
    """MedicationStatement -> Drug(kind="statement"): effective[x] gives start/end."""
    flags: list[str] = []
    rtype = "MedicationStatement"
    patient_id = subject(res, rtype, refs)
    code = _medication(res, rtype, refs, flags)
    start = get_datetime(res, "effectiveDateTime", rtype, flags)
    end = None
    if start is None:
        start, end = period_start_end(res, "effectivePeriod", rtype, flags)
    dosage = first_obj(res, "dosage", rtype)
    if start is None and end is None:
        start, end = _bounds(dosage, f"{rtype}.dosage[0]", flags)
    return (
        Drug(
            rid,
            patient_id,
            code,
            encounter_of(res, rtype, refs, key="context"),
            start,
            end,
            "statement",
            get_str(res, "status", rtype),
            _dose(dosage, f"{rtype}.dosage[0]"),
            tuple(flags),
        ),
    )


def map_procedure(res: Json, rid: str, refs: References) -> tuple[Record, ...]:
    """Procedure: code and subject required; performed[x] gives the time."""
    flags: list[str] = []
    patient_id = subject(res, "Procedure", refs)
    code = required_code(res, "code", "Procedure", flags)
    return (
        Procedure(
            rid,
            patient_id,
            code,
            encounter_of(res, "Procedure", refs),
            _timepoint(res, "Procedure", "performed", flags),
            tuple(flags),
        ),
    )


def map_allergy(res: Json, rid: str, refs: References) -> tuple[Record, ...]:
    """AllergyIntolerance: patient and code required; first reaction's manifestation."""
    flags: list[str] = []
    rtype = "AllergyIntolerance"
    patient_id = subject(res, rtype, refs, key="patient")
    code = required_code(res, "code", rtype, flags)
    reaction = None
    first = first_obj(res, "reaction", rtype)
    if first is not None:
        manifestation = first_obj(first, "manifestation", f"{rtype}.reaction[0]")
        if manifestation is not None:
            reaction = concept_text(manifestation, f"{rtype}.reaction[0].manifestation[0]")
    return (
        Allergy(
            rid,
            patient_id,
            code,
            reaction,
            get_str(res, "criticality", rtype),
            get_datetime(res, "recordedDate", rtype, flags),
            tuple(flags),
        ),
    )
