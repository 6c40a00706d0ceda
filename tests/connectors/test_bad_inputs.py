"""Named bad inputs in tests/data/bad/: each yields exactly the outcomes listed, with
reasons that name the field and rule and never quote the data."""

from __future__ import annotations

import re

import pytest

from medspace.connectors import Parsed, Rejected, Skipped, read_any

from .conftest import BAD

P, S, R = "Parsed", "Skipped", "Rejected"

# (file, [(outcome, position, reason regex | skipped unit type | record kinds), ...])
TABLE: list[tuple[str, list[tuple[str, str, str]]]] = [
    # A good line, then a line cut off mid-string: only the cut line is rejected.
    (
        "fhir_truncated.ndjson",
        [
            (P, "line 1", "Patient"),
            (
                R,
                "line 2",
                r"^line is not valid JSON \(Unterminated string .*\); is it truncated\?$",
            ),
        ],
    ),
    # No resourceType at all.
    ("fhir_missing_resourcetype.ndjson", [(R, "line 1", r"^resourceType: missing$")]),
    # A resourceType that is not an R4 type (a typo with a diacritic).
    (
        "fhir_wrong_resourcetype.ndjson",
        [(R, "line 1", r"^resourceType: not a FHIR R4 resource type$")],
    ),
    # Condition.subject is needed to know whose diagnosis it is.
    ("fhir_condition_without_subject.ndjson", [(R, "line 1", r"^Condition\.subject: required$")]),
    # Condition.code is needed for any analysis.
    ("fhir_condition_without_code.ndjson", [(R, "line 1", r"^Condition\.code: required$")]),
    # 30 February does not exist.
    (
        "fhir_impossible_date.ndjson",
        [(R, "line 1", r"^Patient\.birthDate: not a valid FHIR date .*real calendar day\)$")],
    ),
    # NUL is not allowed in FHIR strings (and PostgreSQL text refuses it): escaped \u0000 in a
    # name and in a code are rejected; the clean third line is kept.
    (
        "fhir_nul_character.ndjson",
        [
            (R, "line 1", r"^a text value contains a NUL \(0x00\) character"),
            (R, "line 2", r"^a text value contains a NUL \(0x00\) character"),
            (P, "line 3", "Patient"),
        ],
    ),
    # HL7 v2: a \X00\ hex escape in PID-5, then a raw NUL byte in PID-5.
    (
        "hl7_nul_character.hl7",
        [
            (R, "message 1 (line 1)", r"^a text value contains a NUL \(0x00\) character"),
            (R, "message 2 (line 3)", r"^a text value contains a NUL \(0x00\) character"),
        ],
    ),
    # CSV: a NUL byte inside a name; the next row is fine.
    (
        "csv_nul_character",
        [
            (R, "row 2", r"^a text value contains a NUL \(0x00\) character"),
            (P, "row 3", "Patient"),
        ],
    ),
    # An unknown code system is kept, flagged, not rejected.
    ("fhir_unknown_code_system.ndjson", [(P, "line 1", "Condition")]),
    # gender outside the FHIR value set.
    (
        "fhir_bad_gender.ndjson",
        [(R, "line 1", r"^Patient\.gender: not one of male\|female\|other\|unknown$")],
    ),
    # Attachment data that is not base64.
    (
        "fhir_bad_base64.ndjson",
        [(R, "line 1", r"^DocumentReference\.content\[0\]\.attachment\.data: not valid base64$")],
    ),
    # A Quantity whose value is a JSON string.
    (
        "fhir_quantity_not_number.ndjson",
        [(R, "line 1", r"^Observation\.valueQuantity\.value: must be a number$")],
    ),
    # A well-formed type MedSpace does not map is skipped by type.
    ("fhir_unmapped_type.ndjson", [(S, "line 1", "Immunization")]),
    # Latin-1 bytes in an NDJSON line.
    ("not_utf8.ndjson", [(R, "line 1", r"^line is not valid UTF-8 \(bad byte at offset \d+\)$")]),
    # An empty file yields nothing and is not an error.
    ("empty.ndjson", []),
    # A Bundle cut off in its second entry: the first entry stands, the rest is one unit.
    (
        "fhir_truncated_bundle.json",
        [
            (P, "entry 1", "Patient"),
            (R, "entry 2", r"^Bundle is not valid JSON after entry 1 \(truncated\?\)"),
        ],
    ),
    # A urn:uuid reference to no entry of the Bundle.
    (
        "fhir_bundle_dangling_reference.json",
        [(R, "entry 1", r"^Condition\.subject\.reference: does not resolve to a Patient")],
    ),
    # Segments without a message header.
    ("hl7_missing_msh.hl7", [(R, "message 1 (line 1)", r"^no MSH segment")]),
    # MSH#@!\$ delimiters: field #, component @, repetition !, escape \, subcomponent $.
    (
        "hl7_other_delimiters.hl7",
        [(P, "message 1 (line 1)", "Patient,Measurement,Observation")],
    ),
    # CRLF segment ends, two messages (A01 with PV1/DG1/AL1, then A08).
    (
        "hl7_crlf.hl7",
        [
            (P, "message 1 (line 1)", "Patient,Encounter,Condition,Allergy"),
            (P, "message 2 (line 7)", "Patient"),
        ],
    ),
    # ADT^A03 (discharge) is not mapped: skipped by type.
    ("hl7_adt_a03.hl7", [(S, "message 1 (line 1)", "ADT^A03")]),
    # An NM result that is not a number.
    (
        "hl7_bad_nm.hl7",
        [(R, "message 1 (line 1)", r"^OBX-5 \(segment 4\): not a number \(value type NM\)$")],
    ),
    # OBX-14 on 30 February.
    (
        "hl7_impossible_date.hl7",
        [(R, "message 1 (line 1)", r"^OBX-14 \(segment 4\): not a valid HL7 timestamp")],
    ),
    # An ADT without PID: records would have no patient.
    (
        "hl7_no_pid.hl7",
        [(R, "message 1 (line 1)", r"^PV1 \(segment 3\): comes before PID \(no patient\)$")],
    ),
    # A raw line break inside OBX-5 splits the segment: the message is quarantined.
    (
        "hl7_line_break_in_field.hl7",
        [(R, "message 1 (line 1)", r"^segment 4: does not start with a segment id")],
    ),
    # Row 3 lacks the birth-date column.
    (
        "csv_missing_column",
        [(P, "row 2", "Patient"), (R, "row 3", r"^row has 4 columns, the header has 5$")],
    ),
    # Row 2 has one column too many.
    ("csv_extra_column", [(R, "row 2", r"^row has 6 columns, the header has 5$")]),
    # 1990-02-30 matches no date format.
    (
        "csv_bad_date",
        [(R, "row 2", r"^column BIRTH_DT \(birth_date\): not a date in any of the mapping's")],
    ),
    # A sex value the value map does not know.
    (
        "csv_bad_sex",
        [(R, "row 2", r"^column SEX \(sex\): not one of male\|female\|other\|unknown")],
    ),
    # An empty patient id.
    ("csv_missing_required", [(R, "row 2", r"^column PAT_ID \(source_id\): required but empty$")]),
    # Latin-1 bytes in a UTF-8 export: only that row is rejected.
    (
        "csv_invalid_bytes",
        [
            (P, "row 2", "Patient"),
            (R, "row 3", r"^row is not valid utf-8 text$"),
            (P, "row 4", "Patient"),
        ],
    ),
    # A GB 18030 export declared in the mapping.
    ("csv_gb18030", [(P, "row 2", "Patient")]),
]

#: Values planted in the bad files that must never reach a reason.
PLANTED = ("Wang", "Xiaoming", "XIAOMING", "110101199003071234", "13800138000", "2023-02-30")


def _describe(outcome: Parsed | Skipped | Rejected) -> tuple[str, str, str]:
    if isinstance(outcome, Parsed):
        return P, outcome.position, ",".join(type(r).__name__ for r in outcome.records)
    if isinstance(outcome, Skipped):
        return S, outcome.position, outcome.unit_type
    return R, outcome.position, outcome.reason


@pytest.mark.parametrize(("name", "expected"), TABLE, ids=[row[0] for row in TABLE])
def test_bad_input_yields_exactly_the_listed_outcomes(
    name: str, expected: list[tuple[str, str, str]]
) -> None:
    got = [_describe(o) for o in read_any(BAD / name)]
    assert [(kind, pos) for kind, pos, _ in got] == [(kind, pos) for kind, pos, _ in expected]
    for (kind, _, detail), (_, _, want) in zip(got, expected, strict=True):
        if kind == R:
            assert re.search(want, detail), detail
        else:
            assert detail == want


def test_every_bad_file_is_in_the_table() -> None:
    assert sorted(p.name for p in BAD.iterdir()) == sorted(name for name, _ in TABLE)


@pytest.mark.parametrize("name", [row[0] for row in TABLE])
def test_no_reason_quotes_a_value_from_the_input(name: str) -> None:
    for outcome in read_any(BAD / name):
        if isinstance(outcome, Rejected):
            for value in PLANTED:
                assert value not in outcome.reason
            assert outcome.raw, "the raw unit is kept for quarantine"


def test_rejected_units_keep_their_raw_bytes() -> None:
    path = BAD / "fhir_truncated.ndjson"
    second_line = path.read_bytes().splitlines()[1]
    rejected = [o for o in read_any(path) if isinstance(o, Rejected)]
    assert [r.raw for r in rejected] == [second_line]


def test_unknown_code_system_is_kept_and_flagged() -> None:
    (outcome,) = read_any(BAD / "fhir_unknown_code_system.ndjson")
    assert isinstance(outcome, Parsed)
    (condition,) = outcome.records
    assert condition.code.system == "http://hospital.example/local-dx"  # type: ignore[union-attr]
    assert condition.code.known is False  # type: ignore[union-attr]
    assert condition.flags == ("unknown-code-system",)


def test_other_delimiters_are_read_from_msh() -> None:
    (outcome,) = read_any(BAD / "hl7_other_delimiters.hl7")
    assert isinstance(outcome, Parsed)
    patient, hemoglobin, comment = outcome.records
    assert patient.source_id == "H1-P000123"
    assert patient.identity.family_name == "WANG"  # type: ignore[union-attr]
    assert hemoglobin.code.code == "718-7" and hemoglobin.value == 13.5  # type: ignore[union-attr]
    assert (hemoglobin.ref_low, hemoglobin.ref_high) == (12.0, 16.0)  # type: ignore[union-attr]
    # Escapes resolve to this message's own delimiters (\F\ -> #, \S\ -> @, ...).
    assert comment.value_text == "a#b@c!d\\e$f"  # type: ignore[union-attr]
