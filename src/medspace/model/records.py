"""Model records: what connectors produce and the store keeps.

The shapes follow OMOP CDM tables (person, visit_occurrence, condition_occurrence,
drug_exposure, measurement, observation, procedure, note, plus allergy) but keep the
**source code with its code system**: standard vocabularies cannot be downloaded here.

Every record carries `source_id`, unique within its kind for one node; re-ingesting a
record with the same kind and `source_id` updates it. Clinical records point at their
patient by `patient_id` (the patient's `source_id`) and at their encounter by
`encounter_id` (the encounter's `source_id`), never by database keys.

Direct identifiers live only in `Identity`; the store encrypts it as one unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

Sex = Literal["male", "female", "other", "unknown"]


@dataclass(frozen=True, slots=True)
class Code:
    """A code with its code system, as the source sent it.

    `system` is a short name from `medspace.model.codes` ("ICD-10", "LOINC", "ATC", ...)
    when the system is known, else the source's own system URI or name with
    `known=False` ("keep and flag": unknown systems are stored, never dropped).
    """

    system: str
    code: str
    display: str | None = None
    known: bool = True


@dataclass(frozen=True, slots=True)
class Address:
    line: str | None = None
    district: str | None = None
    city: str | None = None
    state: str | None = None  # province in China, state in the US
    postal_code: str | None = None
    country: str | None = None


@dataclass(frozen=True, slots=True)
class Identity:
    """Direct identifiers of one patient. Stored only encrypted.

    `national_id_system` is "CN-RID" (GB 11643 resident ID) or "US-SSN" or the
    source's own system name.
    """

    family_name: str | None = None
    given_name: str | None = None
    national_id: str | None = None
    national_id_system: str | None = None
    mrn: str | None = None
    phone: str | None = None
    email: str | None = None
    address: Address | None = None


@dataclass(frozen=True, slots=True)
class Patient:
    source_id: str
    sex: Sex = "unknown"
    birth_date: date | None = None
    deceased: datetime | date | None = None
    identity: Identity = field(default_factory=Identity)
    flags: tuple[str, ...] = ()  # quality flags, e.g. "unknown-code-system", no PHI


@dataclass(frozen=True, slots=True)
class Encounter:
    source_id: str
    patient_id: str
    kind: str = "unknown"  # inpatient | outpatient | emergency | unknown (FHIR class code)
    start: datetime | None = None
    end: datetime | None = None
    code: Code | None = None  # encounter type, if sent
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Condition:
    source_id: str
    patient_id: str
    code: Code
    encounter_id: str | None = None
    onset: datetime | date | None = None
    recorded: datetime | date | None = None
    clinical_status: str | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Drug:
    """A drug exposure: an order (MedicationRequest) or a statement of use."""

    source_id: str
    patient_id: str
    code: Code
    encounter_id: str | None = None
    start: datetime | date | None = None
    end: datetime | date | None = None
    kind: Literal["request", "statement", "administration"] = "request"
    status: str | None = None
    dose: str | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Measurement:
    """A laboratory or vital-sign result (FHIR Observation category laboratory/vital-signs)."""

    source_id: str
    patient_id: str
    code: Code
    encounter_id: str | None = None
    time: datetime | date | None = None
    value: float | None = None
    value_text: str | None = None
    unit: str | None = None
    ref_low: float | None = None
    ref_high: float | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Observation:
    """Any other clinical fact (survey, social history, outcome assessments)."""

    source_id: str
    patient_id: str
    code: Code
    encounter_id: str | None = None
    time: datetime | date | None = None
    value: float | None = None
    value_text: str | None = None
    value_code: Code | None = None
    unit: str | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Procedure:
    source_id: str
    patient_id: str
    code: Code
    encounter_id: str | None = None
    time: datetime | date | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Allergy:
    source_id: str
    patient_id: str
    code: Code
    reaction: str | None = None
    criticality: str | None = None
    recorded: datetime | date | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Note:
    """A clinical note. Its text may hold PHI, so the store keeps it only encrypted."""

    source_id: str
    patient_id: str
    text: str
    encounter_id: str | None = None
    time: datetime | date | None = None
    kind: Code | None = None
    language: str | None = None  # "zh" | "en" | None
    flags: tuple[str, ...] = ()


ClinicalRecord = (
    Encounter | Condition | Drug | Measurement | Observation | Procedure | Allergy | Note
)
Record = Patient | ClinicalRecord

#: Record kind name per class; the store has one table per kind.
KIND_OF: dict[type, str] = {
    Patient: "patient",
    Encounter: "encounter",
    Condition: "condition",
    Drug: "drug",
    Measurement: "measurement",
    Observation: "observation",
    Procedure: "procedure",
    Allergy: "allergy",
    Note: "note",
}
