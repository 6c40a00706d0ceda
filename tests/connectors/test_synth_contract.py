"""CONTRACTS.md: "any format ingests to the same node contents". The synthetic writer's
FHIR NDJSON, FHIR Bundles, CSV and HL7 v2 of one hospital map to the same records."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from medspace.connectors import Parsed, Rejected, read_any
from medspace.synth import generate

#: What an ADT^A01 DG1 segment cannot carry (FHIR Condition.recordedDate, clinicalStatus).
HL7_ABSENT = {("Condition", "recorded"), ("Condition", "clinical_status")}
#: HL7 v2 output has ADT and ORU only: no drug orders, procedures or notes.
HL7_KINDS = {"Patient", "Encounter", "Condition", "Allergy", "Measurement", "Observation"}


@pytest.fixture(scope="module")
def hospitals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "out"
    generate(out, hospitals=2, patients=25, seed=7, workers=1)  # h1 zh_CN, h2 en_US
    return out


def records(path: Path) -> dict[tuple[str, str], Any]:
    outcomes = list(read_any(path))
    assert [o.reason for o in outcomes if isinstance(o, Rejected)] == []
    return {
        (type(r).__name__, r.source_id): r
        for o in outcomes
        if isinstance(o, Parsed)
        for r in o.records
    }


@pytest.mark.parametrize("hospital", ["h1", "h2"])
def test_every_format_of_a_hospital_maps_to_the_same_records(
    hospitals: Path, hospital: str
) -> None:
    base = hospitals / hospital
    ndjson = records(base / "fhir" / "ndjson")
    assert ndjson, "the writer produced records"
    assert records(base / "fhir" / "bundles") == ndjson
    assert records(base / "csv") == ndjson
    hl7 = records(base / "hl7v2")
    assert {kind for kind, _ in hl7} == HL7_KINDS
    assert {key for key in ndjson if key[0] in HL7_KINDS} == set(hl7)
    for key, record in hl7.items():
        for f in fields(record):
            if (key[0], f.name) not in HL7_ABSENT:
                assert getattr(record, f.name) == getattr(ndjson[key], f.name), (key, f.name)
