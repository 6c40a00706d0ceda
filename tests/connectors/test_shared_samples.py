"""The real samples in /work/shared/data ingest with zero rejections (Synthea FHIR R4 bulk
NDJSON; CDC trusted-intermediary HL7 v2 ADT^A01 and Epic ORU^R01)."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from medspace.connectors import Parsed, Rejected, detect_format, read_any
from medspace.model import Condition, Drug, Encounter, Measurement, Note, Observation, Patient

NDJSON = {
    "Patient.00.ndjson": (13, Patient),
    "Condition.00.ndjson": (555, Condition),
    "MedicationRequest.00.ndjson": (1745, Drug),
    "DocumentReference.00.ndjson": (1215, Note),
}


@pytest.mark.parametrize("name", sorted(NDJSON))
def test_synthea_bulk_ndjson_parses_without_rejections(shared_data: Path, name: str) -> None:
    path = shared_data / "fhir-r4-bulk-10-patients" / name
    expected_count, cls = NDJSON[name]
    assert detect_format(path) == "fhir-ndjson"
    outcomes = list(read_any(path))
    assert Counter(type(o) for o in outcomes) == {Parsed: expected_count}
    assert all(isinstance(r, cls) for o in outcomes for r in o.records)


def test_synthea_patients_carry_identity_and_notes_are_text(shared_data: Path) -> None:
    folder = shared_data / "fhir-r4-bulk-10-patients"
    patients = [o.records[0] for o in read_any(folder / "Patient.00.ndjson")]
    assert all(p.identity.national_id_system == "US-SSN" for p in patients)
    assert all(p.identity.mrn == p.source_id for p in patients)
    assert sum(p.deceased is not None for p in patients) >= 3  # "some deceased" per SOURCES.md
    note = next(iter(read_any(folder / "DocumentReference.00.ndjson"))).records[0]
    assert "# Chief Complaint" in note.text and note.language == "en"
    assert note.kind is not None and note.kind.system == "LOINC"


def test_every_reference_points_at_a_patient_in_the_set(shared_data: Path) -> None:
    outcomes = list(read_any(shared_data / "fhir-r4-bulk-10-patients"))
    patient_ids = {r.source_id for o in outcomes for r in o.records if isinstance(r, Patient)}
    clinical = [r for o in outcomes for r in o.records if not isinstance(r, Patient)]
    assert {r.patient_id for r in clinical} <= patient_ids
    assert not [o for o in outcomes if isinstance(o, Rejected)]


def test_the_minnesota_adt_a01_sample_ingests(shared_data: Path) -> None:
    (outcome,) = read_any(shared_data / "hl7v2" / "005_MN_ADT_A01.hl7")
    assert isinstance(outcome, Parsed)
    patient, encounter, gestation = outcome.records
    assert isinstance(patient, Patient) and isinstance(encounter, Encounter)
    assert (patient.source_id, patient.sex, patient.birth_date) == (
        "11102779",
        "male",
        date(2023, 5, 4),
    )
    assert encounter.kind == "inpatient" and encounter.source_id == "407750281-PV1"
    assert isinstance(gestation, Measurement)
    assert (gestation.code.code, gestation.value, gestation.unit) == ("49051-6", 32.0, "wk")
    # OBX-3 names no coding system: the code is kept and flagged.
    assert gestation.flags == ("unknown-code-system",)


def test_the_epic_oru_r01_sample_ingests_with_flagged_placeholders(shared_data: Path) -> None:
    (outcome,) = read_any(shared_data / "hl7v2" / "002_Epic_ORU_R01.hl7")
    assert isinstance(outcome, Parsed)
    kinds = Counter(type(r).__name__ for r in outcome.records)
    assert kinds == {"Patient": 1, "Observation": 3, "Note": 2}
    patient = outcome.records[0]
    # PID-7 "DOB" and PID-8 "SEX" are template placeholders: kept, flagged, not guessed.
    assert (patient.birth_date, patient.sex) == (None, "unknown")
    assert patient.flags == ("invalid-birth-date", "invalid-sex")
    observations = [r for r in outcome.records if isinstance(r, Observation)]
    # The LOINC alternate triplet (...^LN) wins over the local MAYO code.
    assert [(o.code.system, o.code.code) for o in observations] == [
        ("LOINC", "21668-9"),
        ("LOINC", "69049-5"),
        ("LOINC", "18771-6"),
    ]
    notes = [r for r in outcome.records if isinstance(r, Note)]
    assert notes[0].text.startswith("This individual DOES NOT have the factor V Leiden F5")
    assert len(notes[0].text.splitlines()) == 22  # NTE 1-22 under OBX 2


def test_re_reading_the_samples_is_idempotent(shared_data: Path) -> None:
    assert list(read_any(shared_data / "hl7v2")) == list(read_any(shared_data / "hl7v2"))
