"""A summary carries no identifiers and no free text, whatever a source put in which
column: each field passes its rule (codes, known systems, value-set statuses, units),
display texts and reaction names are kept only when short, PHI-free and not naming the
patient, and what is left out is counted as withheld. The asking node refuses a summary
that breaks the same rules."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from medspace.connectors.base import Parsed
from medspace.lookup.summary import MatchInfo, build_summary, identity_check
from medspace.lookup.summary_fields import summary_ok
from medspace.model import Allergy, Code, Condition, Drug, Identity, Measurement, Patient
from medspace.node import init_node, open_node

FREE_TEXT = "Fall at home; found by daughter Ngozi Okafor (tel 415-555-0132), SSN 078-05-1121"
OKAFOR = Identity(
    family_name="Okafor",
    given_name="Adaeze",
    national_id="078-05-1121",
    national_id_system="US-SSN",
    mrn="4471123",
    phone="415-555-0132",
)
LEAKS = ("Okafor", "OKAFOR", "Adaeze", "Ngozi", "4471123", "415-555", "078-05", "Oak St", "Jones")


def _summary(tmp_path: Path, records: list[Any]) -> dict[str, Any]:
    init_node(tmp_path / "h9", "h9")
    patient = Patient("P1", "female", date(1975, 7, 2), identity=OKAFOR)
    with open_node(tmp_path / "h9") as node:
        node.store.ingest(
            [Parsed("test", f"u{i}", (r,)) for i, r in enumerate([patient, *records])],
            source="test",
        )
        with node.store.read_connection() as conn:
            return build_summary(
                conn,
                "P1",
                MatchInfo("exact", 1.0),
                today=date(2025, 6, 1),
                names_patient=identity_check(node.store, conn, "P1"),
            )


def test_free_text_in_a_code_display_does_not_reach_the_summary(tmp_path: Path) -> None:
    summary = _summary(
        tmp_path,
        [
            Condition("C1", "P1", Code("ICD-10", "W19", FREE_TEXT), onset=date(2025, 3, 1)),
            Condition("C2", "P1", Code("ICD-10", "E11.9", "Type 2 diabetes mellitus"), onset=None),
            Drug(
                "D1",
                "P1",
                Code("ATC", "B01AA03", "Warfarin 5 mg nightly per Dr Jones, MRN 4471123"),
                start=date(2025, 1, 10),
                status="active",
            ),
        ],
    )
    texts = {d["code"]: d["text"] for d in [*summary["diagnoses"], *summary["drugs"]]}
    assert texts == {"W19": None, "E11.9": "Type 2 diabetes mellitus", "B01AA03": None}
    assert summary["withheld"] == 2
    assert not any(leak in repr(summary) for leak in LEAKS)
    assert summary_ok(json.loads(json.dumps(summary)))


def test_identifiers_in_coded_columns_are_withheld_and_counted(tmp_path: Path) -> None:
    """The cases an adversarial review put through FHIR, HL7 and CSV ingest: each of
    these reached the clinician's screen before."""
    summary = _summary(
        tmp_path,
        [
            Condition(
                "C1",
                "P1",
                Code("MRN 4471123 Okafor", "E11", "Hypertension (Adaeze Okafor)"),
                onset=date(2024, 1, 1),
                clinical_status="active - call daughter Ngozi 415-555-0132",
            ),
            Condition(
                "C2",
                "P1",
                Code("ICD-10", "E11 Adaeze Okafor SSN 078-05-1121", "Type 2 diabetes"),
                onset=date(2024, 2, 1),
                clinical_status="Resolved",
            ),
            Condition("C3", "P1", Code("ICD-10", "OKAFOR", None), onset=date(2024, 3, 1)),
            Drug(
                "D1",
                "P1",
                Code("ATC", "B01AA03", "warfarin"),
                start=date(2025, 1, 10),
                status="active; pt Adaeze Okafor 078-05-1121 lives 12 Oak St",
            ),
            Allergy(
                "A1",
                "P1",
                Code("SNOMED CT", "91936005", "Penicillin allergy"),
                reaction="Okafor rash",
                criticality="high per daughter Ngozi Okafor tel 415-555-0132",
            ),
            Measurement(
                "M1",
                "P1",
                Code("LOINC", "2345-7", "Glucose"),
                time=date(2025, 5, 1),
                value=5.4,
                unit="mg/dL - patient Adaeze Okafor, MRN 4471123, 12 Oak Street",
                ref_low=3.9,
                ref_high=6.1,
            ),
            Measurement(
                "M2",
                "P1",
                Code("LOINC", "718-7", "Hemoglobin"),
                time=date(2025, 5, 1),
                value=13.1,
                unit="OKAFOR",
            ),
        ],
    )
    assert not any(leak in repr(summary) for leak in LEAKS), summary
    diagnoses = {d["date"]: d for d in summary["diagnoses"]}
    assert diagnoses["2024-01-01"] | {"date": None} == {
        "system": "local",
        "code": "E11",
        "text": None,
        "date": None,
        "status": None,
    }
    assert diagnoses["2024-02-01"]["code"] is None
    assert diagnoses["2024-02-01"]["text"] == "Type 2 diabetes"
    assert diagnoses["2024-02-01"]["status"] == "resolved"
    assert "2024-03-01" not in diagnoses  # neither code nor text left: withheld whole
    assert summary["drugs"][0]["status"] is None and summary["drugs"][0]["current"]
    allergy = summary["allergies"][0]
    assert allergy["reaction"] is None and allergy["criticality"] is None
    assert {lab["code"]: lab["unit"] for lab in summary["labs"]} == {"2345-7": None, "718-7": None}
    # C1 text and status, C2 code, C3 whole, drug status, reaction, criticality, two units
    assert summary["withheld"] == 9
    assert summary_ok(json.loads(json.dumps(summary)))


def _valid() -> dict[str, Any]:
    return {
        "match": {"kind": "exact", "score": 1.0},
        "last_encounter": "2025-05-01",
        "withheld": 0,
        "diagnoses": [
            {"system": "ICD-10", "code": "E11.9", "text": "Diabetes", "date": None, "status": None}
        ],
        "drugs": [],
        "allergies": [],
        "labs": [
            {
                "system": "LOINC",
                "code": "2345-7",
                "text": None,
                "value": 5.4,
                "unit": "mmol/L",
                "low": 3.9,
                "high": 6.1,
                "date": "2025-05-01",
            }
        ],
    }


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s["diagnoses"][0].update(patient_name="Adaeze Okafor"),
        lambda s: s.update(mrn="4471123"),
        lambda s: s["match"].update(patient={"name": "Adaeze Okafor"}),
        lambda s: s["match"].update(kind="name"),
        lambda s: s["match"].update(kind=[]),  # unhashable: once a TypeError, not False
        lambda s: s["match"].update(score=True),
        lambda s: s["match"].update(score=10**400),
        lambda s: s["match"].update(score=1.5),
        lambda s: s["labs"][0].update(value=10**400),
        lambda s: s["labs"][0].update(value=float("nan")),
        lambda s: s["labs"][0].update(low=float("inf")),
        lambda s: s["labs"][0].update(unit="mg/dL call ADAEZE 4155550132"),
        lambda s: s["diagnoses"][0].update(code="E11 Adaeze Okafor"),
        lambda s: s["diagnoses"][0].update(code="E" * 2_000_000),
        lambda s: s["diagnoses"][0].update(text="x" * 101),
        lambda s: s["diagnoses"][0].update(system="MRN 4471123 Okafor"),
        lambda s: s["diagnoses"][0].update(status="active - call daughter"),
        lambda s: s["diagnoses"][0].update(date="14 March 1961"),
        lambda s: s["diagnoses"][0].pop("status"),
        lambda s: s.update(sex="female"),
        lambda s: s.update(withheld=-1),
        lambda s: s.update(drugs=[{"system": "ATC", "code": "B01"}]),
        lambda s: s.update(diagnoses=s["diagnoses"] * 51),
    ],
)
def test_the_asking_node_refuses_a_summary_outside_the_rules(change: Any) -> None:
    """A compromised or outdated node could send extra keys (the node API passed them
    on), huge or non-finite numbers (the view crashed, the API answered 500) or free
    text in coded fields; such an answer is refused as malformed."""
    summary = _valid()
    assert summary_ok(summary)
    change(summary)
    assert not summary_ok(summary)


def test_a_patient_indexed_without_a_record_gets_a_summary_not_an_error(tmp_path: Path) -> None:
    """A linkage index row whose patient has no record in the store (not ingested, or
    removed) used to make the whole answer an error once texts were checked against
    the patient's identity; the summary is empty instead (the benchmark found it)."""
    init_node(tmp_path / "h9", "h9")
    with open_node(tmp_path / "h9") as node, node.store.read_connection() as conn:
        summary = build_summary(
            conn,
            "NOBODY",
            MatchInfo("fuzzy", 0.9),
            today=date(2025, 6, 1),
            names_patient=identity_check(node.store, conn, "NOBODY"),
        )
    assert summary["diagnoses"] == [] and summary["last_encounter"] is None
    assert summary_ok(summary)


def test_withheld_labs_do_not_use_up_the_lab_limit(tmp_path: Path) -> None:
    """Thirty newer results whose codes are free text are withheld; the valid ones are
    still shown (the withheld ones once counted towards the thirty labs a summary holds,
    so only one valid lab came after them)."""
    newer = date(2025, 5, 2)
    labs = [
        Measurement(f"M{i}", "P1", Code("local", f"glucose {i}", None), time=newer, value=5)
        for i in range(30)
    ]
    for code in ("718-7", "2345-7", "2160-0"):
        labs.append(
            Measurement(code, "P1", Code("LOINC", code, None), time=date(2025, 1, 1), value=1)
        )
    summary = _summary(tmp_path, labs)
    assert sorted(lab["code"] for lab in summary["labs"]) == ["2160-0", "2345-7", "718-7"]
    assert summary["withheld"] == 30
