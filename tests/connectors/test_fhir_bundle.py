"""FHIR Bundle JSON: entries as units, urn:uuid references, and whole-file problems."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from medspace.connectors import FhirBundleConnector, Parsed, Rejected, Skipped

WriteBundle = Callable[..., Path]
PATIENT_URL = "urn:uuid:6a1f3e2c-0000-4000-8000-000000000001"
ENCOUNTER_URL = "urn:uuid:6a1f3e2c-0000-4000-8000-000000000002"


def read(path: Path) -> list[Any]:
    return list(FhirBundleConnector().read(path))


def patient_entry(**resource: Any) -> dict[str, Any]:
    return {
        "fullUrl": PATIENT_URL,
        "resource": {"resourceType": "Patient", "id": "H1-P000123", "gender": "male", **resource},
        "request": {"method": "PUT", "url": "Patient/H1-P000123"},
    }


def condition_entry(n: int, subject: str = PATIENT_URL, **extra: Any) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:00000000-0000-4000-8000-0000000000{n:02d}",
        "resource": {
            "resourceType": "Condition",
            "id": f"H1-C{n}",
            "subject": {"reference": subject},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "E11.9"}]},
            **extra,
        },
    }


@pytest.mark.parametrize("bundle_type", ["transaction", "batch", "collection", "searchset"])
def test_every_entry_is_one_unit(write_bundle: WriteBundle, bundle_type: str) -> None:
    path = write_bundle(
        patient_entry(), condition_entry(1), condition_entry(2), bundle_type=bundle_type
    )
    outcomes = read(path)
    assert [o.position for o in outcomes] == ["entry 1", "entry 2", "entry 3"]
    assert all(isinstance(o, Parsed) for o in outcomes)
    assert [o.records[0].patient_id for o in outcomes[1:]] == ["H1-P000123", "H1-P000123"]


def test_urn_uuid_reference_resolves_to_the_entry_id_even_forward(
    write_bundle: WriteBundle,
) -> None:
    encounter = {
        "fullUrl": ENCOUNTER_URL,
        "resource": {
            "resourceType": "Encounter",
            "id": "H1-E9",
            "subject": {"reference": PATIENT_URL},
        },
    }
    path = write_bundle(
        condition_entry(1, encounter={"reference": ENCOUNTER_URL}), encounter, patient_entry()
    )
    outcomes = read(path)
    # Outcomes keep file order although entry 1 waited for entries 2 and 3.
    assert [o.position for o in outcomes] == ["entry 1", "entry 2", "entry 3"]
    condition = outcomes[0].records[0]
    assert (condition.patient_id, condition.encounter_id) == ("H1-P000123", "H1-E9")


def test_resource_without_id_takes_it_from_the_full_url(write_bundle: WriteBundle) -> None:
    entry = patient_entry()
    del entry["resource"]["id"]
    outcomes = read(write_bundle(entry, condition_entry(1)))
    patient_id = PATIENT_URL.removeprefix("urn:uuid:")
    assert outcomes[0].records[0].source_id == patient_id
    assert outcomes[1].records[0].patient_id == patient_id


def test_absolute_full_urls_resolve(write_bundle: WriteBundle) -> None:
    url = "https://fhir.h1.example/r4/Patient/H1-P000123"
    entry = patient_entry()
    entry["fullUrl"] = url
    outcomes = read(write_bundle(entry, condition_entry(1, subject=url)))
    assert outcomes[1].records[0].patient_id == "H1-P000123"


def test_medication_reference_to_a_bundle_entry_is_resolved(write_bundle: WriteBundle) -> None:
    medication = {
        "fullUrl": "urn:uuid:med-1",
        "resource": {
            "resourceType": "Medication",
            "id": "med1",
            "code": {
                "coding": [
                    {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "860975"}
                ]
            },
        },
    }
    request = {
        "resource": {
            "resourceType": "MedicationRequest",
            "id": "mr1",
            "subject": {"reference": PATIENT_URL},
            "medicationReference": {"reference": "urn:uuid:med-1"},
        }
    }
    outcomes = read(write_bundle(patient_entry(), request, medication))
    assert isinstance(outcomes[2], Skipped) and outcomes[2].unit_type == "Medication"
    drug = outcomes[1].records[0]
    assert (drug.code.system, drug.code.code) == ("RxNorm", "860975")


def test_entries_without_resources_and_unmapped_types_are_skipped(
    write_bundle: WriteBundle,
) -> None:
    outcome_entry = {
        "resource": {"resourceType": "OperationOutcome", "issue": []},
        "search": {"mode": "outcome"},
    }
    delete = {"request": {"method": "DELETE", "url": "Patient/old"}}
    outcomes = read(write_bundle(outcome_entry, delete, bundle_type="searchset"))
    assert [(type(o), o.unit_type) for o in outcomes] == [
        (Skipped, "OperationOutcome"),
        (Skipped, "Bundle.entry without resource"),
    ]


def test_a_non_object_entry_is_rejected_with_its_json(write_bundle: WriteBundle) -> None:
    (outcome,) = read(write_bundle([1, 2]))  # type: ignore[arg-type]
    assert isinstance(outcome, Rejected)
    assert outcome.reason == "Bundle.entry: must be a JSON object"
    assert json.loads(outcome.raw) == [1, 2]


def test_rejected_entry_raw_is_the_entry_json(write_bundle: WriteBundle) -> None:
    bad = condition_entry(1)
    del bad["resource"]["code"]
    (_, outcome) = read(write_bundle(patient_entry(), bad))
    assert isinstance(outcome, Rejected) and outcome.reason == "Condition.code: required"
    assert json.loads(outcome.raw) == bad


def test_resource_type_after_the_entries_is_still_found(tmp_path: Path) -> None:
    path = tmp_path / "late.json"
    path.write_text(
        json.dumps({"entry": [patient_entry()], "type": "collection", "resourceType": "Bundle"})
    )
    (outcome,) = read(path)
    assert isinstance(outcome, Parsed)


def test_a_single_resource_file_is_one_unit(tmp_path: Path) -> None:
    path = tmp_path / "patient.json"
    path.write_text(json.dumps({"resourceType": "Patient", "id": "p1"}, indent=2))
    (outcome,) = read(path)
    assert isinstance(outcome, Parsed) and outcome.position == "resource"


@pytest.mark.parametrize(
    ("content", "position", "why"),
    [
        (b'{"id": "x", "entry": []}', "file", "resourceType: missing at the top level"),
        (b"[1, 2, 3]", "file", "resourceType: missing at the top level"),
        (
            b'{"resourceType": "Bundle", "entry": [}',
            "entry 1",
            "Bundle is not valid JSON after entry 0",
        ),
        (b'{"id": "x" "resourceType": "Bundle"}', "file", "file is not valid JSON"),
        (
            b'{"resourceType": "Bundle", "entry": [{"resource": {"id": "\xff"}}]}',
            "entry 1",
            "Bundle is not valid JSON after entry 0",
        ),
    ],
)
def test_broken_documents_yield_one_rejection(
    tmp_path: Path, content: bytes, position: str, why: str
) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(content)
    (outcome,) = read(path)
    assert isinstance(outcome, Rejected)
    assert outcome.position == position and outcome.reason.startswith(why)
    assert outcome.raw == content


def test_an_empty_bundle_file_yields_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_bytes(b"  \n")
    assert read(path) == []
