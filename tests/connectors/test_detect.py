"""Format detection, read_any over files and folders, and the connector registry."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import ClassVar

import pytest

from medspace.connectors import (
    DIRECTORY,
    ConnectorError,
    Parsed,
    Rejected,
    connector_names,
    detect_format,
    get_connector,
    read_any,
    register_connector,
)
from medspace.connectors.fhir import FhirNdjsonConnector

PATIENT = {"resourceType": "Patient", "id": "p1"}
BUNDLE = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": PATIENT}]}
ADT = "MSH|^~\\&|HIS|H1|MS|H1|20240101||ADT^A01|C1|P|2.5.1\rPID|1||P1^^^H1^MR\r"
MAPPING = "version: 1\ntables:\n  p.csv:\n    kind: patient\n    columns:\n      source_id: ID\n"


@pytest.mark.parametrize(
    ("name", "content", "fmt"),
    [
        ("a.ndjson", json.dumps(PATIENT) + "\n" + json.dumps(PATIENT) + "\n", "fhir-ndjson"),
        ("one-line.json", json.dumps(PATIENT), "fhir-ndjson"),  # a single resource on one line
        ("bundle.json", json.dumps(BUNDLE, indent=2), "fhir-bundle"),
        ("bundle-line.json", json.dumps(BUNDLE), "fhir-bundle"),
        (
            "late-type.json",
            json.dumps({"type": "collection", "entry": [], "resourceType": "Bundle"}),
            "fhir-bundle",
        ),
        ("pretty-patient.json", json.dumps(PATIENT, indent=2), "fhir-bundle"),
        ("\ufeffbom.txt", "\ufeff\n\n" + json.dumps(PATIENT) + "\n", "fhir-ndjson"),
        ("adt.txt", "\ufeff  \r\n" + ADT, "hl7v2"),
        ("pid-first.dat", "PID|1||P1\r", "hl7v2"),
        ("broken.ndjson", "garbage\n", "fhir-ndjson"),  # the extension decides, lines get rejected
        ("broken.hl7", "garbage\n", "hl7v2"),
        ("m.yaml", MAPPING, "csv-mapping"),
    ],
)
def test_formats_are_sniffed_from_content(
    tmp_path: Path, name: str, content: str, fmt: str
) -> None:
    path = tmp_path / name.lstrip("\ufeff")
    path.write_text(content, encoding="utf-8")
    assert detect_format(path) == fmt


def test_gzip_files_are_sniffed_after_decompression(tmp_path: Path) -> None:
    path = tmp_path / "Patient.ndjson.gz"
    path.write_bytes(gzip.compress((json.dumps(PATIENT) + "\n").encode()))
    assert detect_format(path) == "fhir-ndjson"
    (outcome,) = read_any(path)
    assert isinstance(outcome, Parsed)


def test_folders_are_csv_exports_or_plain(tmp_path: Path) -> None:
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "mapping.yaml").write_text(MAPPING)
    assert detect_format(tmp_path / "csv") == "csv-mapping"
    assert detect_format(tmp_path) == DIRECTORY


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        (
            "notes.md",
            "# hello",
            r"notes\.md: unknown format .*pass fmt= one of csv-mapping, fhir-bundle",
        ),
        (
            "p.csv",
            "ID\nP1\n",
            r"a CSV file needs its mapping; pass the folder holding mapping\.yaml",
        ),
        ("list.json", "[1, 2]", r"a JSON array is neither FHIR NDJSON nor a Bundle"),
        ("blank.dat", "", r"is empty, so its format cannot be told"),
    ],
)
def test_unknown_inputs_raise_with_what_to_do(
    tmp_path: Path, name: str, content: str, why: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConnectorError, match=why):
        detect_format(path)


def test_missing_input_raises() -> None:
    with pytest.raises(ConnectorError, match="not found; check the path"):
        read_any(Path("/nonexistent/medspace/input.ndjson"))


def test_empty_files_yield_nothing(tmp_path: Path) -> None:
    for name in ("empty.ndjson", "empty.hl7", "empty.dat", "blank.json"):
        (tmp_path / name).write_text("" if name != "blank.json" else " \n\n ")
        assert list(read_any(tmp_path / name)) == []


def test_a_folder_is_read_in_sorted_order_with_subfolders(tmp_path: Path) -> None:
    (tmp_path / "b.ndjson").write_text(json.dumps(PATIENT) + "\n")
    (tmp_path / "a.hl7").write_text(ADT)
    (tmp_path / ".hidden.txt").write_text("ignored")
    csv_dir = tmp_path / "c"
    csv_dir.mkdir()
    (csv_dir / "mapping.yaml").write_text(MAPPING)
    (csv_dir / "p.csv").write_text("ID\nP9\n")
    sub = tmp_path / "d"
    sub.mkdir()
    (sub / "x.json").write_text(json.dumps(BUNDLE, indent=1))
    names = [(Path(o.source).name, o.position) for o in read_any(tmp_path)]
    assert names == [
        ("a.hl7", "message 1 (line 1)"),
        ("b.ndjson", "line 1"),
        ("p.csv", "row 2"),
        ("x.json", "entry 1"),
    ]


def test_csv_tables_named_by_a_yaml_in_a_plain_folder_are_not_read_twice(tmp_path: Path) -> None:
    (tmp_path / "his.yaml").write_text(MAPPING)
    (tmp_path / "p.csv").write_text("ID\nP1\n")
    (tmp_path / "z.ndjson").write_text(json.dumps(PATIENT) + "\n")
    assert [Path(o.source).name for o in read_any(tmp_path)] == ["p.csv", "z.ndjson"]


def test_an_unknown_file_in_a_folder_fails_before_any_outcome(tmp_path: Path) -> None:
    (tmp_path / "a.ndjson").write_text(json.dumps(PATIENT) + "\n")
    (tmp_path / "z.md").write_text("# notes")
    with pytest.raises(ConnectorError, match=r"z\.md: unknown format"):
        read_any(tmp_path)


def test_fmt_forces_a_format(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("not json\n")
    (outcome,) = read_any(path, fmt="fhir-ndjson")
    assert isinstance(outcome, Rejected) and outcome.reason.startswith("line is not valid JSON")
    (tmp_path / "more.txt").write_text(json.dumps(PATIENT) + "\n")
    assert [type(o) for o in read_any(tmp_path, fmt="fhir-ndjson")] == [Rejected, Parsed]


def test_an_unknown_fmt_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(
        ConnectorError,
        match=r"unknown format 'xml'; use one of: csv-mapping, fhir-bundle, fhir-ndjson, hl7v2",
    ):
        read_any(tmp_path, fmt="xml")


def test_registry_holds_each_connector_by_its_declared_name() -> None:
    assert connector_names() == ["csv-mapping", "fhir-bundle", "fhir-ndjson", "hl7v2"]
    for name in connector_names():
        assert get_connector(name).name == name
    assert isinstance(get_connector("fhir-ndjson"), FhirNdjsonConnector)


def test_registry_refuses_a_taken_or_missing_name() -> None:
    class Impostor:
        name: ClassVar[str] = "hl7v2"

        def read(self, path: Path) -> list[object]:
            return []

    class Nameless:
        def read(self, path: Path) -> list[object]:
            return []

    with pytest.raises(ConnectorError, match="'hl7v2' is already registered"):
        register_connector(Impostor)  # type: ignore[type-var]
    with pytest.raises(ConnectorError, match="declares no `name`"):
        register_connector(Nameless)  # type: ignore[type-var]
    assert connector_names() == ["csv-mapping", "fhir-bundle", "fhir-ndjson", "hl7v2"]
