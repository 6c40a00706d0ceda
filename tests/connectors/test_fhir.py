"""FHIR R4 NDJSON: each mapped resource type, references, identifiers and rejections."""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from medspace.connectors import FhirNdjsonConnector, Parsed, Rejected, Skipped
from medspace.model import (
    Allergy,
    Condition,
    Drug,
    Encounter,
    Measurement,
    Note,
    Observation,
    Patient,
    Procedure,
)

LOINC = "http://loinc.org"
SUBJECT = {"reference": "Patient/p1"}
WriteNdjson = Callable[..., Path]


def read(path: Path) -> list[Any]:
    return list(FhirNdjsonConnector().read(path))


def one(write_ndjson: WriteNdjson, resource: dict[str, Any]) -> Any:
    (outcome,) = read(write_ndjson(resource))
    return outcome


def records(write_ndjson: WriteNdjson, resource: dict[str, Any]) -> tuple[Any, ...]:
    outcome = one(write_ndjson, resource)
    assert isinstance(outcome, Parsed), outcome
    return outcome.records


def reason(write_ndjson: WriteNdjson, resource: dict[str, Any]) -> str:
    outcome = one(write_ndjson, resource)
    assert isinstance(outcome, Rejected), outcome
    return outcome.reason


def coding(system: str | None, code: str, display: str | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"code": code}
    if system:
        c["system"] = system
    if display:
        c["display"] = display
    return {"coding": [c]}


# --- Patient -------------------------------------------------------------------------


def test_patient_maps_demographics_and_identity(write_ndjson: WriteNdjson) -> None:
    (patient,) = records(
        write_ndjson,
        {
            "resourceType": "Patient",
            "id": "p1",
            "gender": "female",
            "birthDate": "1927-05-21",
            "deceasedDateTime": "1989-05-09T20:35:22-04:00",
            "identifier": [
                {"system": "https://github.com/synthetichealth/synthea", "value": "x"},
                {"type": coding(None, "MR"), "system": "http://hosp", "value": "MRN-1"},
                {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-94-5397"},
            ],
            "name": [
                {"use": "maiden", "family": "Old", "given": ["A"]},
                {"use": "official", "family": "Medhurst", "given": ["Sumiko", "Larue"]},
            ],
            "telecom": [
                {"system": "email", "value": "s@example.org"},
                {"system": "phone", "value": "555-810-7203"},
            ],
            "address": [
                {"use": "work", "city": "Elsewhere"},
                {
                    "use": "home",
                    "line": ["633 Abernathy Landing", "Apt 2"],
                    "city": "Emporia",
                    "state": "KS",
                    "postalCode": "66801",
                    "country": "US",
                },
            ],
        },
    )
    assert isinstance(patient, Patient)
    assert patient.source_id == "p1"
    assert patient.sex == "female"
    assert patient.birth_date == date(1927, 5, 21)
    assert isinstance(patient.deceased, datetime) and patient.deceased.utcoffset() is not None
    ident = patient.identity
    assert (ident.family_name, ident.given_name) == ("Medhurst", "Sumiko Larue")
    assert (ident.national_id, ident.national_id_system) == ("999-94-5397", "US-SSN")
    assert ident.mrn == "MRN-1"
    assert (ident.phone, ident.email) == ("555-810-7203", "s@example.org")
    assert ident.address is not None
    assert ident.address.line == "633 Abernathy Landing, Apt 2"
    assert (ident.address.city, ident.address.postal_code) == ("Emporia", "66801")
    assert patient.flags == ()


@pytest.mark.parametrize(
    "identifier",
    [
        # Chinese resident ID by v2-0203 type NN + ISO 3166 CHN
        {"type": coding("http://terminology.hl7.org/CodeSystem/v2-0203", "NNCHN"), "value": "X"},
        # ... or by MedSpace's system URI
        {"system": "https://medspace.example/fhir/sid/cn-rid", "value": "X"},
    ],
)
def test_chinese_resident_id_is_the_national_id(
    write_ndjson: WriteNdjson, identifier: dict[str, Any]
) -> None:
    (patient,) = records(
        write_ndjson, {"resourceType": "Patient", "id": "p1", "identifier": [identifier]}
    )
    assert (patient.identity.national_id, patient.identity.national_id_system) == ("X", "CN-RID")


def test_partial_birth_date_is_the_first_day_and_flagged(write_ndjson: WriteNdjson) -> None:
    (patient,) = records(
        write_ndjson, {"resourceType": "Patient", "id": "p1", "birthDate": "1980-07"}
    )
    assert patient.birth_date == date(1980, 7, 1)
    assert patient.flags == ("partial-date",)


def test_deceased_without_a_date_is_flagged(write_ndjson: WriteNdjson) -> None:
    (patient,) = records(
        write_ndjson, {"resourceType": "Patient", "id": "p1", "deceasedBoolean": True}
    )
    assert patient.deceased is None
    assert patient.flags == ("deceased-date-unknown",)


def test_text_only_name_is_kept_and_flagged(write_ndjson: WriteNdjson) -> None:
    (patient,) = records(
        write_ndjson, {"resourceType": "Patient", "id": "p1", "name": [{"text": "张三"}]}
    )
    assert patient.identity.given_name == "张三"
    assert patient.flags == ("name-text-only",)


@pytest.mark.parametrize(
    ("patch", "why"),
    [
        ({"birthDate": "1990-13-01"}, r"Patient\.birthDate: not a valid FHIR date"),
        ({"birthDate": 19900101}, r"Patient\.birthDate: must be a string"),
        ({"gender": "M"}, r"Patient\.gender: not one of"),
        ({"id": "has space"}, r"Patient\.id: not a valid FHIR id"),
        ({"id": None}, r"Patient\.id: required"),
        ({"name": "Wang"}, r"Patient\.name: must be a JSON array"),
        ({"name": [{"given": "Wang"}]}, r"Patient\.name\[0\]\.given: must be a JSON array"),
        ({"deceasedDateTime": "2020-01-01T25:00:00Z"}, r"Patient\.deceasedDateTime: not a valid"),
    ],
)
def test_malformed_patient_is_rejected(
    write_ndjson: WriteNdjson, patch: dict[str, Any], why: str
) -> None:
    resource = {"resourceType": "Patient", "id": "p1", **patch}
    resource = {k: v for k, v in resource.items() if v is not None}
    assert re.match(why, reason(write_ndjson, resource))


# --- Encounter, Condition, Procedure -----------------------------------------------------


@pytest.mark.parametrize(
    ("klass", "kind"),
    [("IMP", "inpatient"), ("AMB", "outpatient"), ("EMER", "emergency"), ("HH", "unknown")],
)
def test_encounter_class_gives_the_kind(write_ndjson: WriteNdjson, klass: str, kind: str) -> None:
    (enc,) = records(
        write_ndjson,
        {
            "resourceType": "Encounter",
            "id": "e1",
            "subject": SUBJECT,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": klass},
            "period": {"start": "2020-01-01", "end": "2020-01-03T10:00:00+08:00"},
            "type": [coding("http://snomed.info/sct", "185349003", "Encounter for check up")],
        },
    )
    assert isinstance(enc, Encounter)
    assert (enc.patient_id, enc.kind) == ("p1", kind)
    assert enc.start == datetime(2020, 1, 1)  # a date-only start becomes midnight
    assert enc.end is not None and enc.end.tzinfo is not None
    assert enc.code is not None and (enc.code.system, enc.code.code) == ("SNOMED CT", "185349003")


def test_condition_prefers_a_known_coding_and_resolves_references(
    write_ndjson: WriteNdjson,
) -> None:
    (cond,) = records(
        write_ndjson,
        {
            "resourceType": "Condition",
            "id": "c1",
            "subject": {"reference": "https://fhir.example.org/r4/Patient/p1/_history/3"},
            "encounter": {"reference": "Encounter/e1"},
            "code": {
                "coding": [
                    {"system": "http://hospital/local", "code": "L1"},
                    {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"},
                ],
                "text": "Type 2 diabetes",
            },
            "onsetPeriod": {"start": "2019-03"},
            "recordedDate": "2019-04-01T08:00:00Z",
            "clinicalStatus": coding(
                "http://terminology.hl7.org/CodeSystem/condition-clinical", "active"
            ),
        },
    )
    assert isinstance(cond, Condition)
    assert (cond.patient_id, cond.encounter_id) == ("p1", "e1")
    assert (cond.code.system, cond.code.code, cond.code.display) == (
        "ICD-10-CM",
        "E11.9",
        "Type 2 diabetes",
    )
    assert cond.code.known
    assert cond.onset == date(2019, 3, 1)
    assert cond.recorded == datetime(2019, 4, 1, 8, tzinfo=UTC)
    assert cond.clinical_status == "active"
    assert cond.flags == ("partial-date",)


@pytest.mark.parametrize(
    ("subject", "why"),
    [
        ({"reference": "Group/g1"}, r"^Condition\.subject\.reference: must point to a Patient$"),
        ({"reference": "Patient?identifier=x|1"}, r"conditional references are not supported"),
        ({"reference": "urn:uuid:abc"}, r"cannot be resolved in NDJSON"),
        ({"identifier": {"value": "1"}}, r"^Condition\.subject\.reference: required"),
        ({"reference": "p1"}, r"^Condition\.subject\.reference: not of the form Type/id$"),
        ("Patient/p1", r"^Condition\.subject: must be a Reference object$"),
        ({"reference": "#p1"}, r"contained resources cannot be a Patient"),
    ],
)
def test_unusable_subject_is_rejected(write_ndjson: WriteNdjson, subject: Any, why: str) -> None:
    resource = {
        "resourceType": "Condition",
        "id": "c1",
        "subject": subject,
        "code": coding(None, "x"),
    }
    assert re.search(why, reason(write_ndjson, resource))


def test_text_only_code_is_rejected(write_ndjson: WriteNdjson) -> None:
    resource = {
        "resourceType": "Condition",
        "id": "c1",
        "subject": SUBJECT,
        "code": {"text": "flu"},
    }
    assert reason(write_ndjson, resource).startswith("Condition.code: no coding with a code")


def test_procedure_time_comes_from_performed(write_ndjson: WriteNdjson) -> None:
    (proc,) = records(
        write_ndjson,
        {
            "resourceType": "Procedure",
            "id": "pr1",
            "subject": SUBJECT,
            "code": coding("http://snomed.info/sct", "80146002"),
            "performedPeriod": {
                "start": "2020-02-02T10:00:00+01:00",
                "end": "2020-02-02T11:00:00+01:00",
            },
        },
    )
    assert isinstance(proc, Procedure)
    assert proc.time == datetime.fromisoformat("2020-02-02T10:00:00+01:00")


# --- Drugs --------------------------------------------------------------------------------


def test_medication_request_maps_code_dose_and_time(write_ndjson: WriteNdjson) -> None:
    (drug,) = records(
        write_ndjson,
        {
            "resourceType": "MedicationRequest",
            "id": "m1",
            "status": "active",
            "intent": "order",
            "subject": SUBJECT,
            "medicationCodeableConcept": coding(
                "http://www.nlm.nih.gov/research/umls/rxnorm", "314076", "lisinopril 10 MG"
            ),
            "authoredOn": "2020-05-01T09:00:00Z",
            "dosageInstruction": [
                {"doseAndRate": [{"doseQuantity": {"value": 2.0, "unit": "tablet"}}]}
            ],
        },
    )
    assert isinstance(drug, Drug)
    assert (drug.code.system, drug.code.code) == ("RxNorm", "314076")
    assert (drug.kind, drug.status, drug.dose) == ("request", "active", "2 tablet")
    assert drug.start == datetime(2020, 5, 1, 9, tzinfo=UTC)


def test_contained_medication_reference_is_resolved(write_ndjson: WriteNdjson) -> None:
    (drug,) = records(
        write_ndjson,
        {
            "resourceType": "MedicationRequest",
            "id": "m1",
            "subject": SUBJECT,
            "contained": [
                {
                    "resourceType": "Medication",
                    "id": "med",
                    "code": coding("http://www.whocc.no/atc", "A10BA02"),
                }
            ],
            "medicationReference": {"reference": "#med"},
        },
    )
    assert (drug.code.system, drug.code.code) == ("ATC", "A10BA02")


def test_medication_outside_the_file_is_rejected_with_advice(write_ndjson: WriteNdjson) -> None:
    why = reason(
        write_ndjson,
        {
            "resourceType": "MedicationRequest",
            "id": "m1",
            "subject": SUBJECT,
            "medicationReference": {"reference": "Medication/x"},
        },
    )
    assert why.startswith(
        "MedicationRequest.medicationReference.reference: the Medication is not in this file"
    )


def test_medication_statement_period_and_context(write_ndjson: WriteNdjson) -> None:
    (drug,) = records(
        write_ndjson,
        {
            "resourceType": "MedicationStatement",
            "id": "ms1",
            "status": "completed",
            "subject": SUBJECT,
            "context": {"reference": "Encounter/e9"},
            "medicationCodeableConcept": coding("http://www.whocc.no/atc", "C09AA03"),
            "effectivePeriod": {"start": "2020-01-01", "end": "2020-03-01"},
            "dosage": [{"text": "10 mg daily"}],
        },
    )
    assert (drug.kind, drug.encounter_id, drug.dose) == ("statement", "e9", "10 mg daily")
    assert (drug.start, drug.end) == (date(2020, 1, 1), date(2020, 3, 1))


def test_medication_is_required(write_ndjson: WriteNdjson) -> None:
    why = reason(
        write_ndjson, {"resourceType": "MedicationStatement", "id": "ms1", "subject": SUBJECT}
    )
    assert why == "MedicationStatement.medication[x]: required"


# --- Observations -------------------------------------------------------------------------


def observation(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "subject": SUBJECT,
        "code": coding(LOINC, "2345-7", "Glucose"),
        "effectiveDateTime": "2021-06-01T07:30:00+08:00",
        **extra,
    }


def test_laboratory_quantity_is_a_measurement_with_reference_range(
    write_ndjson: WriteNdjson,
) -> None:
    (m,) = records(
        write_ndjson,
        observation(
            category=[
                coding("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory")
            ],
            valueQuantity={"value": 6.1, "unit": "mmol/L", "system": "http://unitsofmeasure.org"},
            referenceRange=[{"low": {"value": 3.9}, "high": {"value": 6.1}}],
        ),
    )
    assert isinstance(m, Measurement)
    assert (m.code.system, m.code.code, m.value, m.unit) == ("LOINC", "2345-7", 6.1, "mmol/L")
    assert (m.ref_low, m.ref_high) == (3.9, 6.1)
    assert m.time == datetime.fromisoformat("2021-06-01T07:30:00+08:00")


def test_quantity_without_category_is_a_measurement(write_ndjson: WriteNdjson) -> None:
    (m,) = records(write_ndjson, observation(valueQuantity={"value": 5, "code": "mg"}))
    assert isinstance(m, Measurement) and (m.value, m.unit) == (5.0, "mg")


def test_quantity_with_comparator_keeps_text_not_a_number(write_ndjson: WriteNdjson) -> None:
    (m,) = records(
        write_ndjson, observation(valueQuantity={"value": 5, "comparator": "<", "unit": "U/L"})
    )
    assert (m.value, m.value_text, m.unit) == (None, "<5", "U/L")


def test_lab_with_coded_value_is_a_measurement_with_text(write_ndjson: WriteNdjson) -> None:
    (m,) = records(
        write_ndjson,
        observation(
            category=[coding(None, "laboratory")],
            valueCodeableConcept=coding("http://snomed.info/sct", "260385009", "Negative"),
        ),
    )
    assert isinstance(m, Measurement) and (m.value, m.value_text) == (None, "Negative")


def test_survey_with_coded_value_is_an_observation(write_ndjson: WriteNdjson) -> None:
    (o,) = records(
        write_ndjson,
        observation(
            category=[coding(None, "social-history")],
            code=coding(LOINC, "72166-2", "Tobacco smoking status"),
            valueCodeableConcept=coding("http://snomed.info/sct", "8517006", "Ex-smoker"),
        ),
    )
    assert isinstance(o, Observation)
    assert o.value_code is not None and (o.value_code.system, o.value_code.code) == (
        "SNOMED CT",
        "8517006",
    )
    assert o.value_code.display == "Ex-smoker" and o.value_text is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"valueString": "see note"}, (None, "see note")),
        ({"valueBoolean": False}, (None, "false")),
        ({"valueInteger": 3}, (3.0, None)),
        ({"valueRange": {"low": {"value": 1}, "high": {"value": 2.5}}}, (None, "1-2.5")),
        (
            {"valueRatio": {"numerator": {"value": 1}, "denominator": {"value": 128}}},
            (None, "1/128"),
        ),
        ({"valueDateTime": "2020-01-01"}, (None, "2020-01-01")),
    ],
)
def test_other_value_types_map_to_value_or_text(
    write_ndjson: WriteNdjson, value: dict[str, Any], expected: tuple[Any, Any]
) -> None:
    (o,) = records(write_ndjson, observation(category=[coding(None, "survey")], **value))
    assert isinstance(o, Observation)
    assert (o.value, o.value_text) == expected


def test_blood_pressure_components_become_measurements(write_ndjson: WriteNdjson) -> None:
    recs = records(
        write_ndjson,
        observation(
            category=[coding(None, "vital-signs")],
            code=coding(LOINC, "85354-9", "Blood pressure panel"),
            component=[
                {
                    "code": coding(LOINC, "8480-6"),
                    "valueQuantity": {"value": 120, "unit": "mm[Hg]"},
                },
                {"code": coding(LOINC, "8462-4"), "valueQuantity": {"value": 80, "unit": "mm[Hg]"}},
            ],
        ),
    )
    assert [(r.source_id, r.code.code, r.value) for r in recs] == [
        ("o1#component-1", "8480-6", 120.0),
        ("o1#component-2", "8462-4", 80.0),
    ]
    assert all(isinstance(r, Measurement) and r.patient_id == "p1" for r in recs)


def test_observation_value_of_wrong_type_is_rejected(write_ndjson: WriteNdjson) -> None:
    assert (
        reason(write_ndjson, observation(valueBoolean="yes"))
        == "Observation.valueBoolean: must be true or false"
    )


# --- Allergy, DocumentReference -------------------------------------------------------------


def test_allergy_maps_patient_reaction_and_criticality(write_ndjson: WriteNdjson) -> None:
    (allergy,) = records(
        write_ndjson,
        {
            "resourceType": "AllergyIntolerance",
            "id": "a1",
            "patient": SUBJECT,
            "code": coding("http://www.nlm.nih.gov/research/umls/rxnorm", "7980", "Penicillin G"),
            "criticality": "high",
            "recordedDate": "2018-01-01",
            "reaction": [
                {"manifestation": [coding("http://snomed.info/sct", "247472004", "Hives")]}
            ],
        },
    )
    assert isinstance(allergy, Allergy)
    assert (allergy.patient_id, allergy.reaction, allergy.criticality) == ("p1", "Hives", "high")
    assert allergy.recorded == date(2018, 1, 1)


def test_allergy_needs_a_patient(write_ndjson: WriteNdjson) -> None:
    why = reason(
        write_ndjson, {"resourceType": "AllergyIntolerance", "id": "a1", "code": coding(None, "x")}
    )
    assert why == "AllergyIntolerance.patient: required"


def document(text: bytes, content_type: str, **attachment: Any) -> dict[str, Any]:
    return {
        "resourceType": "DocumentReference",
        "id": "d1",
        "subject": SUBJECT,
        "type": coding(LOINC, "34117-2", "History and physical note"),
        "date": "2020-01-01T00:00:00Z",
        "context": {"encounter": [{"reference": "Encounter/e1"}]},
        "content": [
            {
                "attachment": {
                    "contentType": content_type,
                    "data": base64.b64encode(text).decode(),
                    **attachment,
                }
            }
        ],
    }


def test_document_text_is_decoded_with_its_charset(write_ndjson: WriteNdjson) -> None:
    text = "患者主诉头痛三天。"
    (note,) = records(write_ndjson, document(text.encode("gb18030"), "text/plain; charset=GB18030"))
    assert isinstance(note, Note)
    assert (note.text, note.language, note.encounter_id) == (text, "zh", "e1")
    assert note.kind is not None and note.kind.code == "34117-2"
    assert note.flags == ("language-guessed",)


def test_document_language_comes_from_the_attachment(write_ndjson: WriteNdjson) -> None:
    (note,) = records(write_ndjson, document(b"Cough.", "text/plain", language="en-US"))
    assert (note.text, note.language, note.flags) == ("Cough.", "en", ())


def test_document_without_inline_text_is_skipped(write_ndjson: WriteNdjson) -> None:
    resource = document(b"%PDF-1.4", "application/pdf")
    resource["content"].append(
        {"attachment": {"contentType": "text/plain", "url": "https://x/y.txt"}}
    )
    outcome = one(write_ndjson, resource)
    assert isinstance(outcome, Skipped)
    assert outcome.unit_type == "DocumentReference (no inline text)"


@pytest.mark.parametrize(
    ("data", "content_type", "why"),
    [
        (b"\xff\xfe\xfa", "text/plain; charset=utf-8", r"\.data: not valid utf-8 text$"),
        (
            b"x",
            "text/plain; charset=klingon",
            r"\.contentType: names a charset Python does not know$",
        ),
    ],
)
def test_undecodable_document_is_rejected(
    write_ndjson: WriteNdjson, data: bytes, content_type: str, why: str
) -> None:
    assert re.search(why, reason(write_ndjson, document(data, content_type)))


def test_attachment_data_needs_a_content_type(write_ndjson: WriteNdjson) -> None:
    resource = document(b"x", "text/plain")
    del resource["content"][0]["attachment"]["contentType"]
    assert reason(write_ndjson, resource).endswith(
        "contentType: required when data is present (att-1)"
    )


# --- Lines ------------------------------------------------------------------------------


def test_blank_lines_are_not_units_and_a_bom_is_ignored(write_ndjson: WriteNdjson) -> None:
    patient = json.dumps({"resourceType": "Patient", "id": "p1"}).encode()
    path = write_ndjson(b"\xef\xbb\xbf" + patient, b"", b"   ", patient)
    assert [o.position for o in read(path)] == ["line 1", "line 4"]


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b"[1, 2]", "resource: must be a JSON object"),
        (b'"Patient"', "resource: must be a JSON object"),
        (
            b'{"resourceType": "Observation", "id": "o", "valueQuantity": {"value": NaN}}',
            "NaN/Infinity",
        ),
        (b"[" * 100_000, "is not valid JSON"),
    ],
)
def test_lines_that_are_not_resources_are_rejected(
    write_ndjson: WriteNdjson, line: bytes, why: str
) -> None:
    (outcome,) = read(write_ndjson(line))
    assert isinstance(outcome, Rejected) and why in outcome.reason


def test_gzip_ndjson_is_read(tmp_path: Path) -> None:
    path = tmp_path / "Patient.ndjson.gz"
    path.write_bytes(gzip.compress(b'{"resourceType":"Patient","id":"p1"}\n'))
    (outcome,) = read(path)
    assert isinstance(outcome, Parsed) and outcome.records[0].source_id == "p1"
