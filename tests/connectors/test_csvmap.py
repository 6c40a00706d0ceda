"""CSV export + mapping.yaml: the contract's example, every record kind, encodings,
CSV quoting, and mapping errors that stop before any row is read."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from medspace.connectors import ConnectorError, CsvMappingConnector, Parsed, Rejected
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

CONTRACT_MAPPING = """\
version: 1
encoding: utf-8
delimiter: ","
date_formats: ["%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y%m%d"]
tables:
  patients.csv:
    kind: patient
    columns:
      source_id: PAT_ID
      family_name: XING
      given_name: MING
      sex: SEX
      birth_date: BIRTH_DT
      national_id: ID_NO
      national_id_system: {value: CN-RID}
    values:
      sex: {"1": male, "2": female}
  diagnoses.csv:
    kind: condition
    columns:
      source_id: DIAG_ID
      patient_id: PAT_ID
      encounter_id: VISIT_ID
      code.system: {value: ICD-10}
      code.code: ICD_CODE
      code.display: ICD_NAME
      onset: DIAG_DATE
"""


def export(
    folder: Path, mapping: str, tables: dict[str, list[list[str]]], encoding: str = "utf-8"
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mapping.yaml").write_text(mapping, encoding="utf-8")
    for name, rows in tables.items():
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        (folder / name).write_bytes(buffer.getvalue().encode(encoding))
    return folder


def one_table(kind: str, file: str = "p.csv", **columns: str) -> str:
    """A mapping.yaml with one table whose columns map field -> column."""
    lines = "".join(f"      {field.replace('__', '.')}: {col}\n" for field, col in columns.items())
    return f"version: 1\ntables:\n  {file}:\n    kind: {kind}\n    columns:\n{lines}"


def read(path: Path) -> list[Any]:
    return list(CsvMappingConnector().read(path))


def test_the_contract_example_maps_patients_and_diagnoses(tmp_path: Path) -> None:
    folder = export(
        tmp_path / "csv",
        CONTRACT_MAPPING,
        {
            "patients.csv": [
                ["PAT_ID", "XING", "MING", "SEX", "BIRTH_DT", "ID_NO"],
                ["H1-P000123", "王", "小明", "1", "19900307", "110101199003071234"],
            ],
            "diagnoses.csv": [
                ["DIAG_ID", "PAT_ID", "VISIT_ID", "ICD_CODE", "ICD_NAME", "DIAG_DATE"],
                ["D1", "H1-P000123", "V1", "E11.9", "2型糖尿病", "2024-01-01 10:30:00"],
                ["D2", "H1-P000123", "", "I10", "", "2024-01-02"],
            ],
        },
    )
    outcomes = read(folder)
    assert [(Path(o.source).name, o.position) for o in outcomes] == [
        ("patients.csv", "row 2"),
        ("diagnoses.csv", "row 2"),
        ("diagnoses.csv", "row 3"),
    ]
    (patient,) = outcomes[0].records
    assert isinstance(patient, Patient)
    assert (patient.source_id, patient.sex, patient.birth_date) == (
        "H1-P000123",
        "male",
        date(1990, 3, 7),
    )
    ident = patient.identity
    assert (ident.family_name, ident.given_name) == ("王", "小明")
    assert (ident.national_id, ident.national_id_system) == ("110101199003071234", "CN-RID")
    (d1,), (d2,) = outcomes[1].records, outcomes[2].records
    assert isinstance(d1, Condition)
    assert (d1.code.system, d1.code.code, d1.code.display, d1.code.known) == (
        "ICD-10",
        "E11.9",
        "2型糖尿病",
        True,
    )
    assert d1.onset == datetime(2024, 1, 1, 10, 30)  # a format with a time gives a datetime
    assert (d2.encounter_id, d2.code.display, d2.onset) == (None, None, date(2024, 1, 2))


def test_the_mapping_file_itself_can_be_given(tmp_path: Path) -> None:
    folder = export(
        tmp_path / "csv",
        CONTRACT_MAPPING,
        {
            "patients.csv": [["PAT_ID", "XING", "MING", "SEX", "BIRTH_DT", "ID_NO"]],
            "diagnoses.csv": [],
        },
    )
    assert read(folder / "mapping.yaml") == []


KIND_CASES: list[tuple[str, dict[str, str], type, dict[str, Any]]] = [
    (
        "encounter",
        {
            "source_id": "V1",
            "patient_id": "P1",
            "kind": "inpatient",
            "start": "2024-01-01",
            "end": "2024-01-03 08:00:00",
        },
        Encounter,
        {"start": datetime(2024, 1, 1), "end": datetime(2024, 1, 3, 8), "kind": "inpatient"},
    ),
    (
        "drug",
        {
            "source_id": "R1",
            "patient_id": "P1",
            "code.system": "ATC",
            "code.code": "A10BA02",
            "start": "2024-01-01",
            "kind": "request",
            "dose": "500 mg bid",
        },
        Drug,
        {"dose": "500 mg bid", "kind": "request"},
    ),
    (
        "measurement",
        {
            "source_id": "L1",
            "patient_id": "P1",
            "code.system": "LOINC",
            "code.code": "2345-7",
            "value": "6.1",
            "unit": "mmol/L",
            "ref_low": "3.9",
            "ref_high": "6.1",
        },
        Measurement,
        {"value": 6.1, "ref_low": 3.9, "ref_high": 6.1},
    ),
    (
        "observation",
        {
            "source_id": "O1",
            "patient_id": "P1",
            "code.system": "LOINC",
            "code.code": "72166-2",
            "value_code.system": "SNOMED",
            "value_code.code": "8517006",
        },
        Observation,
        {"value_code": "SNOMED CT/8517006"},
    ),
    (
        "procedure",
        {
            "source_id": "S1",
            "patient_id": "P1",
            "code.system": "SNOMED",
            "code.code": "80146002",
            "time": "2024-01-01",
        },
        Procedure,
        {"time": date(2024, 1, 1)},
    ),
    (
        "allergy",
        {
            "source_id": "A1",
            "patient_id": "P1",
            "code.system": "RXNORM",
            "code.code": "7980",
            "reaction": "皮疹",
            "criticality": "high",
        },
        Allergy,
        {"reaction": "皮疹"},
    ),
    (
        "note",
        {
            "source_id": "N1",
            "patient_id": "P1",
            "text": '患者, "头痛"\n三天',
            "language": "zh",
            "kind.system": "LOINC",
            "kind.code": "11506-3",
        },
        Note,
        {"text": '患者, "头痛"\n三天', "language": "zh"},
    ),
]


@pytest.mark.parametrize(
    ("kind", "row", "cls", "expected"), KIND_CASES, ids=[c[0] for c in KIND_CASES]
)
def test_every_record_kind_can_be_mapped(
    tmp_path: Path, kind: str, row: dict[str, str], cls: type, expected: dict[str, Any]
) -> None:
    columns = "\n".join(f"      {field}: C{i}" for i, field in enumerate(row))
    mapping = f"version: 1\ntables:\n  t.csv:\n    kind: {kind}\n    columns:\n{columns}\n"
    folder = export(
        tmp_path / "csv",
        mapping,
        {"t.csv": [[f"C{i}" for i in range(len(row))], list(row.values())]},
    )
    (outcome,) = read(folder)
    assert isinstance(outcome, Parsed), outcome
    (record,) = outcome.records
    assert isinstance(record, cls)
    for field, value in expected.items():
        got = getattr(record, field)
        if field == "value_code":
            got = f"{got.system}/{got.code}"
        assert got == value
    assert record.flags == ()


def test_unknown_code_system_is_kept_and_flagged(tmp_path: Path) -> None:
    mapping = CONTRACT_MAPPING.replace(
        "code.system: {value: ICD-10}", "code.system: {value: HIS-LOCAL}"
    )
    folder = export(
        tmp_path / "csv",
        mapping,
        {
            "patients.csv": [["PAT_ID", "XING", "MING", "SEX", "BIRTH_DT", "ID_NO"]],
            "diagnoses.csv": [
                ["DIAG_ID", "PAT_ID", "VISIT_ID", "ICD_CODE", "ICD_NAME", "DIAG_DATE"],
                ["D1", "P1", "", "X9", "", ""],
            ],
        },
    )
    (outcome,) = read(folder)
    (condition,) = outcome.records
    assert (condition.code.system, condition.code.known, condition.flags) == (
        "HIS-LOCAL",
        False,
        ("unknown-code-system",),
    )


def test_numbers_that_are_not_numbers_are_rejected(tmp_path: Path) -> None:
    mapping = one_table(
        "measurement", "l.csv", source_id="ID", patient_id="PAT", code__code="CODE", value="VAL"
    )
    folder = export(
        tmp_path / "csv",
        mapping,
        {
            "l.csv": [
                ["ID", "PAT", "CODE", "VAL"],
                ["L1", "P1", "x", "1,5"],
                ["L2", "P1", "x", "nan"],
            ]
        },
    )
    assert [o.reason for o in read(folder)] == ["column VAL (value): not a number"] * 2


@pytest.mark.parametrize(
    ("encoding", "delimiter"), [("utf-8-sig", ","), ("gb18030", ";"), ("utf-8", "\t")]
)
def test_encodings_and_delimiters_from_the_mapping(
    tmp_path: Path, encoding: str, delimiter: str
) -> None:
    mapping = one_table("patient", source_id="ID", family_name="NAME").replace(
        "version: 1\n", f'version: 1\nencoding: {encoding}\ndelimiter: "{delimiter}"\n'
    )
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "mapping.yaml").write_text(mapping.replace("\t", "\\t"))
    text = f"ID{delimiter}NAME\nP1{delimiter}欧阳\n"
    (folder / "p.csv").write_bytes(text.encode(encoding))
    (outcome,) = read(folder)
    assert outcome.records[0].identity.family_name == "欧阳"


def test_a_bom_on_a_utf8_header_is_ignored(tmp_path: Path) -> None:
    mapping = (
        "version: 1\ntables:\n  p.csv:\n    kind: patient\n    columns:\n      source_id: ID\n"
    )
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "mapping.yaml").write_text(mapping)
    (folder / "p.csv").write_bytes("\ufeffID\nP1\n\nP2\n".encode())
    assert [(o.position, o.records[0].source_id) for o in read(folder)] == [
        ("row 2", "P1"),
        ("row 4", "P2"),
    ]


def test_an_unterminated_quote_rejects_rather_than_crashes(tmp_path: Path) -> None:
    mapping = one_table("patient", source_id="ID", family_name="NAME")
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "mapping.yaml").write_text(mapping)
    (folder / "p.csv").write_bytes(b'ID,NAME\nP1,"Wang\nP2,Li\n')
    outcomes = read(folder)
    assert len(outcomes) == 1 and isinstance(outcomes[0], Rejected)
    assert "Wang" not in outcomes[0].reason and outcomes[0].raw == b'P1,"Wang\nP2,Li\n'


@pytest.mark.parametrize(
    ("mapping", "why"),
    [
        ("tables: {}", r"version: must be 1"),
        ("version: 1\ntables: {}", r"tables: must map at least one CSV file"),
        (
            "version: 1\nencoding: klingon\ntables: {a.csv: {kind: patient, columns: {x: A}}}",
            r"encoding: unknown encoding",
        ),
        (
            "version: 1\ndate_formats: []\ntables: {a.csv: {kind: patient, columns: {x: A}}}",
            r"date_formats: must be a non-empty list",
        ),
        (
            "version: 1\ntables: {a.csv: {kind: lab, columns: {source_id: A}}}",
            r"tables\.a\.csv\.kind: must be one of patient\|encounter",
        ),
        (
            "version: 1\ntables: {a.csv: {kind: patient, columns: {name: A}}}",
            r"tables\.a\.csv\.columns\.name: not a field of patient",
        ),
        (
            "version: 1\ntables: {a.csv: {kind: condition, columns: {source_id: A, code.code: B}}}",
            r"tables\.a\.csv\.columns: condition needs patient_id",
        ),
        (
            "version: 1\ntables: {a.csv: {kind: patient, columns: {source_id: {const: 1}}}}",
            r"a constant is written \{value: \.\.\.\}",
        ),
        (
            "version: 1\ntables: {../a.csv: {kind: patient, columns: {source_id: A}}}",
            r"must be a plain file name",
        ),
        (
            "version: 1\ntables: {a.csv: {kind: patient, columns: {source_id: A}, "
            "values: {sex: {1: male}}}}",
            r"values\.sex: must be a value map for a mapped field",
        ),
        ("version: [1\n", r"not valid YAML at line"),
        (
            "version: 1\ntables: {missing.csv: {kind: patient, columns: {source_id: A}}}",
            r"missing\.csv: named in mapping\.yaml but not found",
        ),
        (
            "version: 1\ntables: {a.csv: {kind: patient, columns: {source_id: NOPE}}}",
            r"a\.csv: header lacks mapped column\(s\) 'NOPE'",
        ),
    ],
)
def test_mapping_problems_stop_before_any_row(tmp_path: Path, mapping: str, why: str) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "mapping.yaml").write_text(mapping)
    (folder / "a.csv").write_text("A,B\n1,2\n")
    with pytest.raises(ConnectorError, match=why):
        read(folder)


def test_a_folder_without_mapping_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match=r"no mapping\.yaml in this folder"):
        read(tmp_path)


def test_a_duplicate_header_is_named_by_position_not_text(tmp_path: Path) -> None:
    folder = export(
        tmp_path / "csv",
        one_table("patient", source_id="ID"),
        {"p.csv": [["ID", "Wang", "Wang"], ["P1", "x", "y"]]},
    )
    with pytest.raises(ConnectorError, match=r"header columns 2 and 3 have the same name") as err:
        read(folder)
    assert "Wang" not in str(err.value)


def test_a_constant_id_system_is_dropped_when_the_row_has_no_id(tmp_path: Path) -> None:
    folder = export(
        tmp_path / "csv",
        CONTRACT_MAPPING,
        {
            "patients.csv": [
                ["PAT_ID", "XING", "MING", "SEX", "BIRTH_DT", "ID_NO"],
                ["P1", "", "", "", "", ""],
            ],
            "diagnoses.csv": [],
        },
    )
    (outcome,) = read(folder)
    assert outcome.records[0].identity.national_id_system is None
