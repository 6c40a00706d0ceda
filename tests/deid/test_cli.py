"""`medspace deid` commands, run through Typer's test runner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from medspace.deid.cli import app
from medspace.deid.table import Table, read_csv, write_csv

runner = CliRunner()


def test_text_scrubs_stdin_and_survives_invalid_utf8() -> None:
    note = "患者王秀英，电话13812345678。".encode() + b"\xff\xfe" + b" Seen by Dr. Jane Roe.\n"
    result = runner.invoke(app, ["text", "--lang", "auto", "--report"], input=note)
    assert result.exit_code == 0, result.output
    assert "[PERSON]" in result.stdout and "13812345678" not in result.stdout
    assert "Jane Roe" not in result.stdout
    assert "were not UTF-8" in result.stderr
    assert "王秀英" not in result.stderr  # stderr holds counts only


def test_text_with_surrogates_needs_a_key(tmp_path: Path) -> None:
    refused = runner.invoke(app, ["text", "--mode", "surrogate"], input="王秀英".encode())
    assert refused.exit_code == 2 and "key" in refused.stderr
    key = tmp_path / "deid.key"
    assert runner.invoke(app, ["key", "--out", str(key)]).exit_code == 0
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    done = runner.invoke(
        app,
        ["text", "--mode", "surrogate", "--key-file", str(key)],
        input="患者王秀英入院".encode(),
    )
    assert done.exit_code == 0 and "王秀英" not in done.stdout
    again = runner.invoke(app, ["key", "--out", str(key)])
    assert again.exit_code == 2 and "never overwritten" in again.stderr


def test_empty_stdin() -> None:
    result = runner.invoke(app, ["text"], input=b"")
    assert result.exit_code == 0 and result.stdout == ""


def test_table_prints_the_risk_report_before_and_after(tmp_path: Path) -> None:
    rows = [
        (str(20 + i % 60), "female" if i % 2 else "male", f"021{i % 7:02d}", "I10")
        for i in range(600)
    ]
    source = tmp_path / "in.csv"
    write_csv(Table.from_rows(["age", "sex", "zip", "diagnosis"], rows), source)
    target = tmp_path / "out.csv"
    report = tmp_path / "report.json"
    result = runner.invoke(
        app,
        ["table", "--pack", "hipaa-safe-harbor", "--qi", "age,sex,zip", "--k", "5",
         str(source), str(target), "--json", str(report)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "before" in result.stdout and "after" in result.stdout
    assert "prosecutor risk, highest" in result.stdout
    assert read_csv(target).rows == 600
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["after"]["k"] >= 5 and data["before"]["k"] < 5


def test_table_errors_are_one_line_with_exit_code_2(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("age,sex\n40,male\n", encoding="utf-8")
    result = runner.invoke(app, ["table", "--qi", "zip", str(source), str(tmp_path / "o.csv")])
    assert result.exit_code == 2 and "no column 'zip'" in result.stderr


def test_fhir_ndjson_keeps_good_lines_and_reports_bad_ones(tmp_path: Path) -> None:
    key = tmp_path / "k"
    runner.invoke(app, ["key", "--out", str(key)])
    source = tmp_path / "Patient.ndjson"
    patient = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Smith"}]}
    source.write_text(json.dumps(patient) + "\n{not json\n[1, 2]\n", encoding="utf-8")
    target = tmp_path / "out.ndjson"
    result = runner.invoke(app, ["fhir", str(source), str(target), "--key-file", str(key)])
    assert result.exit_code == 2
    assert "line 2: not JSON" in result.stderr and "line 3: not a FHIR resource" in result.stderr
    lines = target.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 and "Smith" not in lines[0]


def test_fhir_directory_is_mirrored(tmp_path: Path) -> None:
    key = tmp_path / "k"
    runner.invoke(app, ["key", "--out", str(key)])
    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "b.json").write_text(
        json.dumps({"resourceType": "Patient", "id": "p1", "birthDate": "1970-05-06"}),
        encoding="utf-8",
    )
    result = runner.invoke(
        app, ["fhir", str(source), str(tmp_path / "out"), "--key-file", str(key)]
    )
    assert result.exit_code == 0, result.output
    out = json.loads((tmp_path / "out" / "sub" / "b.json").read_text(encoding="utf-8"))
    assert out["birthDate"] == "1970"


def test_fhir_without_a_key_says_how_to_make_one(tmp_path: Path) -> None:
    source = tmp_path / "p.json"
    source.write_text('{"resourceType": "Patient"}', encoding="utf-8")
    result = runner.invoke(app, ["fhir", str(source), str(tmp_path / "o.json")])
    assert result.exit_code == 2 and "medspace deid key" in result.stderr


def test_packs_are_listed() -> None:
    result = runner.invoke(app, ["packs"])
    assert result.exit_code == 0
    for name in ("hipaa-safe-harbor", "pipl", "gdpr-pseudonymise"):
        assert name in result.stdout
