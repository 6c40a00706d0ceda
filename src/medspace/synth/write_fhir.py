"""FHIR R4 output: one transaction Bundle per patient and Bulk Data NDJSON per type.

Resources keep the chart's ids (`Patient/H1-P000123`). In the NDJSON export references
are relative (`Patient/H1-P000123`), as Bulk Data exports write them; in a Bundle every
entry has a `urn:uuid` fullUrl, references between entries use those URNs, and each
entry is a `PUT Type/id`, so loading a bundle twice leaves one copy.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from medspace.model import Code, Measurement
from medspace.model.codes import ATC, ICD10, LOINC, SNOMED
from medspace.synth.catalog import ALLERGENS, REACTION_BY_TEXT
from medspace.synth.chart import Chart
from medspace.synth.people import CN_RID, US_SSN, ZH

RESOURCE_TYPES = (
    "Patient",
    "Encounter",
    "Condition",
    "MedicationRequest",
    "Observation",
    "AllergyIntolerance",
    "Procedure",
    "DocumentReference",
)

#: FHIR system URIs of the code systems the generator uses (FHIR R4 terminology page).
SYSTEM_URIS = {
    ICD10: "http://hl7.org/fhir/sid/icd-10",
    LOINC: "http://loinc.org",
    ATC: "http://www.whocc.no/atc",
    SNOMED: "http://snomed.info/sct",
}
UCUM_URI = "http://unitsofmeasure.org"
#: Identifier systems. There is no published FHIR URI for the Chinese resident ID, so
#: MedSpace names its own under the reserved `.example` domain.
IDENTIFIER_SYSTEMS = {
    CN_RID: "https://medspace.example/fhir/sid/cn-rid",
    US_SSN: "http://hl7.org/fhir/sid/us-ssn",
}
MRN_SYSTEM = "https://medspace.example/fhir/sid/{hospital}/mrn"

_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
_ID_TYPES = {CN_RID: "NI", US_SSN: "SS"}
_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_CLASSES = {
    "inpatient": ("IMP", "inpatient encounter"),
    "outpatient": ("AMB", "ambulatory"),
    "emergency": ("EMER", "emergency"),
}
_CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
_ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
_ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
_OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_LANGUAGE_TAGS = {"zh": "zh-CN", "en": "en-US"}
_ALLERGY_CATEGORY = {item.concept.code: item.category for item in ALLERGENS.values()}
#: Namespace of the name-based (RFC 9562 version 5) UUIDs of bundle entries.
UUID_NAMESPACE = uuid.UUID("5b0c4d0e-6a35-4c5e-9d55-2f3a8e1c7b21")
_NAMESPACE_BYTES = UUID_NAMESPACE.bytes


def _when(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


@lru_cache(maxsize=1024)
def _concept(code: Code) -> dict[str, Any]:
    # Cached and shared between resources: callers never modify it.
    coding = {"system": SYSTEM_URIS.get(code.system, code.system), "code": code.code}
    if code.display:
        coding["display"] = code.display
    return {"coding": [coding]}


@lru_cache(maxsize=64)
def _simple(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM_URI, "code": unit}


def _ref(kind: str, source_id: str | None) -> dict[str, str]:
    return {"reference": f"{kind}/{source_id}"}


def patient_resource(chart: Chart) -> dict[str, Any]:
    """The chart's Patient resource."""
    patient = chart.patient
    identity = patient.identity
    identifiers: list[dict[str, Any]] = [
        {
            "use": "usual",
            "type": _simple(_V2_0203, "MR"),
            "system": MRN_SYSTEM.format(hospital=chart.hospital.id),
            "value": identity.mrn,
        }
    ]
    if identity.national_id and identity.national_id_system:
        identifiers.append(
            {
                "use": "official",
                "type": _simple(_V2_0203, _ID_TYPES[identity.national_id_system]),
                "system": IDENTIFIER_SYSTEMS[identity.national_id_system],
                "value": identity.national_id,
            }
        )
    family, given = identity.family_name or "", identity.given_name or ""
    chinese = chart.person_locale == ZH
    text = family + given if chinese else f"{given} {family}"
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient.source_id,
        "identifier": identifiers,
        "name": [{"use": "official", "text": text, "family": family, "given": [given]}],
    }
    telecom = []
    if identity.phone:
        use = "mobile" if chinese else "home"
        telecom.append({"system": "phone", "value": identity.phone, "use": use})
    if identity.email:
        telecom.append({"system": "email", "value": identity.email})
    if telecom:
        resource["telecom"] = telecom
    resource["gender"] = patient.sex
    resource["birthDate"] = _when(patient.birth_date)
    address = identity.address
    if address is not None:
        fields = {
            "use": "home",
            "type": "physical",
            "line": [address.line] if address.line else None,
            "district": address.district,
            "city": address.city,
            "state": address.state,
            "postalCode": address.postal_code,
            "country": address.country,
        }
        resource["address"] = [{k: v for k, v in fields.items() if v is not None}]
    return resource


@lru_cache(maxsize=256)
def _reference_range(low: float | None, high: float | None, unit: str) -> list[dict[str, Any]]:
    # Cached and shared between resources: callers never modify it.
    limits = {}
    if low is not None:
        limits["low"] = _quantity(low, unit)
    if high is not None:
        limits["high"] = _quantity(high, unit)
    return [limits]


def _lab(m: Measurement) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": m.source_id,
        "status": "final",
        "category": [_simple(_OBSERVATION_CATEGORY, "laboratory")],
        "code": _concept(m.code),
        "subject": _ref("Patient", m.patient_id),
        "encounter": _ref("Encounter", m.encounter_id),
        "effectiveDateTime": _when(m.time),
    }
    if m.value is not None and m.unit:
        resource["valueQuantity"] = _quantity(m.value, m.unit)
    if m.unit and (m.ref_low is not None or m.ref_high is not None):
        resource["referenceRange"] = _reference_range(m.ref_low, m.ref_high, m.unit)
    return resource


def chart_resources(chart: Chart) -> list[dict[str, Any]]:
    """Every resource of the chart, Patient first, in RESOURCE_TYPES order."""
    pid = chart.patient.source_id
    subject = _ref("Patient", pid)
    resources = [patient_resource(chart)]
    for encounter, department in zip(chart.encounters, chart.departments, strict=True):
        code, display = _CLASSES[encounter.kind]
        resources.append(
            {
                "resourceType": "Encounter",
                "id": encounter.source_id,
                "status": "finished",
                "class": {"system": _ACT_CODE, "code": code, "display": display},
                "serviceType": {"text": department},
                "subject": subject,
                "period": {"start": _when(encounter.start), "end": _when(encounter.end)},
            }
        )
    for condition in chart.conditions:
        resources.append(
            {
                "resourceType": "Condition",
                "id": condition.source_id,
                "clinicalStatus": _simple(_CONDITION_CLINICAL, condition.clinical_status or ""),
                "verificationStatus": _simple(_CONDITION_VERIFICATION, "confirmed"),
                "category": [_simple(_CONDITION_CATEGORY, "encounter-diagnosis")],
                "code": _concept(condition.code),
                "subject": subject,
                "encounter": _ref("Encounter", condition.encounter_id),
                "onsetDateTime": _when(condition.onset),
                "recordedDate": _when(condition.recorded),
            }
        )
    for drug in chart.drugs:
        bounds = {"start": _when(drug.start)}
        if drug.end is not None:
            bounds["end"] = _when(drug.end)
        resources.append(
            {
                "resourceType": "MedicationRequest",
                "id": drug.source_id,
                "status": drug.status,
                "intent": "order",
                "medicationCodeableConcept": _concept(drug.code),
                "subject": subject,
                "encounter": _ref("Encounter", drug.encounter_id),
                "authoredOn": _when(drug.start),
                "dosageInstruction": [
                    {"text": drug.dose, "timing": {"repeat": {"boundsPeriod": bounds}}}
                ],
            }
        )
    resources.extend(_lab(m) for m in chart.measurements)
    for observation in chart.observations:
        assert observation.value_code is not None
        resources.append(
            {
                "resourceType": "Observation",
                "id": observation.source_id,
                "status": "final",
                "category": [_simple(_OBSERVATION_CATEGORY, "exam")],
                "code": _concept(observation.code),
                "subject": subject,
                "encounter": _ref("Encounter", observation.encounter_id),
                "effectiveDateTime": _when(observation.time),
                "valueCodeableConcept": _concept(observation.value_code),
            }
        )
    for allergy in chart.allergies:
        reaction = REACTION_BY_TEXT[allergy.reaction or ""]
        category = _ALLERGY_CATEGORY[allergy.code.code]
        resources.append(
            {
                "resourceType": "AllergyIntolerance",
                "id": allergy.source_id,
                "clinicalStatus": _simple(_ALLERGY_CLINICAL, "active"),
                "verificationStatus": _simple(_ALLERGY_VERIFICATION, "confirmed"),
                "type": "allergy",
                "category": [category],
                "criticality": allergy.criticality,
                "code": _concept(allergy.code),
                "patient": subject,
                "recordedDate": _when(allergy.recorded),
                "reaction": [
                    {
                        "manifestation": [
                            {
                                "coding": [
                                    {
                                        "system": SYSTEM_URIS[SNOMED],
                                        "code": reaction.code,
                                        "display": reaction.en,
                                    }
                                ],
                                "text": allergy.reaction,
                            }
                        ],
                        "severity": "severe" if allergy.criticality == "high" else "mild",
                    }
                ],
            }
        )
    for procedure in chart.procedures:
        resources.append(
            {
                "resourceType": "Procedure",
                "id": procedure.source_id,
                "status": "completed",
                "code": _concept(procedure.code),
                "subject": subject,
                "encounter": _ref("Encounter", procedure.encounter_id),
                "performedDateTime": _when(procedure.time),
            }
        )
    for gold in chart.notes:
        note = gold.note
        assert note.kind is not None and note.language is not None
        data = base64.b64encode(note.text.encode("utf-8")).decode("ascii")
        resources.append(
            {
                "resourceType": "DocumentReference",
                "id": note.source_id,
                "status": "current",
                "docStatus": "final",
                "type": _concept(note.kind),
                "subject": subject,
                "date": _when(note.time),
                "content": [
                    {
                        "attachment": {
                            "contentType": "text/plain; charset=utf-8",
                            "language": _LANGUAGE_TAGS[note.language],
                            "data": data,
                        }
                    }
                ],
                "context": {"encounter": [_ref("Encounter", note.encounter_id)]},
            }
        )
    return resources


def full_url(kind: str, source_id: str) -> str:
    """The entry's fullUrl: `urn:uuid:` + uuid5(UUID_NAMESPACE, "Kind/id"), computed
    without building a `uuid.UUID` (this runs once per resource)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{kind}/{source_id}".encode()).digest())
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC variant
    h = digest[:16].hex()
    return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class FhirWriter:
    """Streams charts of one hospital to `fhir/ndjson/` under `root` and one bundle per
    patient to `bundles` (default `root/fhir/bundles`)."""

    def __init__(self, root: Path, bundles: Path | None = None) -> None:
        self._bundles = bundles if bundles is not None else root / "fhir" / "bundles"
        self._bundles.mkdir(parents=True, exist_ok=True)
        ndjson = root / "fhir" / "ndjson"
        ndjson.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, BinaryIO] = {
            kind: open(ndjson / f"{kind}.ndjson", "wb")  # noqa: SIM115
            for kind in RESOURCE_TYPES
        }

    def write(self, chart: Chart, number: int) -> None:
        """Write the chart's bundle `NNNNNN.json` (number is 1-based) and NDJSON lines."""
        entries = []
        urns: list[tuple[bytes, bytes]] = []
        for resource in chart_resources(chart):
            kind, source_id = resource["resourceType"], resource["id"]
            text = orjson.dumps(resource)
            self._files[kind].write(text + b"\n")
            urn = full_url(kind, source_id)
            if kind in ("Patient", "Encounter"):
                urns.append(
                    (
                        f'"reference":"{kind}/{source_id}"'.encode(),
                        f'"reference":"{urn}"'.encode(),
                    )
                )
            entries.append(
                b'{"fullUrl":"%s","resource":%s,"request":{"method":"PUT","url":"%s/%s"}}'
                % (urn.encode(), text, kind.encode(), source_id.encode())
            )
        bundle_id = full_url("Bundle", chart.patient.source_id).removeprefix("urn:uuid:")
        bundle = b'{"resourceType":"Bundle","id":"%s","type":"transaction","entry":[%s]}\n' % (
            bundle_id.encode(),
            b",".join(entries),
        )
        for relative, absolute in urns:
            bundle = bundle.replace(relative, absolute)
        (self._bundles / f"{number:06d}.json").write_bytes(bundle)

    def close(self) -> None:
        """Flush and close the NDJSON files."""
        for handle in self._files.values():
            handle.close()
