"""De-identified extracts: a synthetic hospital in, JSON lines out, no direct identifier
of any patient anywhere in the extract files, under every sharing pack."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import stat
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medspace.connectors import read_any
from medspace.errors import UsageError
from medspace.model import Identity, Note, Patient
from medspace.node import NodeConfigError, init_node, open_node
from medspace.node.extract import export_deidentified
from medspace.node.extract_cli import node_export
from medspace.node.sharing import (
    DEID_KEY_FILE,
    SHARING_FILE,
    SharingConfig,
    load_sharing,
    save_sharing,
)
from medspace.store.schema import TABLE_OF

PACKS = ("hipaa-safe-harbor", "pipl", "gdpr-pseudonymise")
#: Gold note spans that are direct identifiers under every pack.
DIRECT_SPAN_TYPES = {"PERSON", "ID", "PHONE", "EMAIL", "ADDRESS"}
#: Source CSV columns holding direct identifiers (name, MRN, ID number, phone, e-mail, street).
DIRECT_COLUMNS = ("BAH", "XING", "MING", "ID_NO", "LXDH", "DZYX", "XXDZ")


@dataclasses.dataclass(frozen=True)
class Hospital:
    node: Path
    source: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Hospital:
    """One synthetic zh_CN hospital (20 patients) ingested into a node (built once)."""
    from medspace.synth import generate

    base = tmp_path_factory.mktemp("extract")
    generate(base / "synth", hospitals=1, patients=20, seed=1, locale="zh_CN")
    source = next(p for p in (base / "synth").iterdir() if p.is_dir())
    init_node(base / "node", "h1")
    with open_node(base / "node") as node:
        node.store.ingest(read_any(source), source="h1")
    return Hospital(base / "node", source)


@pytest.fixture
def hospital(built: Hospital, tmp_path: Path) -> Hospital:
    """A private copy of the node, so each test may write its own sharing.json."""
    shutil.copytree(built.node, tmp_path / "node")
    return Hospital(tmp_path / "node", built.source)


def _source_identifiers(source: Path) -> set[str]:
    """Direct identifiers read from the hospital's source CSV (GB 18030), not the store."""
    with (source / "csv" / "patients.csv").open(encoding="gb18030", newline="") as f:
        found = {row[c] for row in csv.DictReader(f) for c in DIRECT_COLUMNS if row[c]}
    with (source / "csv" / "patients.csv").open(encoding="gb18030", newline="") as f:
        found |= {row["XING"] + row["MING"] for row in csv.DictReader(f)}
    return found


def _store_identifiers(node_dir: Path) -> set[str]:
    """Direct identifiers as the store decrypts them (`patient_identity`)."""
    values: set[str] = set()
    with open_node(node_dir) as node:
        for patient in node.store.iter_records("patient"):
            assert isinstance(patient, Patient)
            i = node.store.patient_identity(patient.source_id)
            values |= {patient.source_id}
            for v in (i.family_name, i.given_name, i.national_id, i.mrn, i.phone, i.email):
                if v:
                    values.add(v)
            if i.family_name and i.given_name:
                values.add(i.family_name + i.given_name)
            if i.address is not None and i.address.line:
                values.add(i.address.line)
    return values


def _gold_spans(source: Path) -> set[str]:
    """The direct identifiers the generator put into the notes."""
    spans: set[str] = set()
    for line in (source / "notes_gold.jsonl").read_text(encoding="utf-8").splitlines():
        note = json.loads(line)
        for span in note["spans"]:
            if span["type"] in DIRECT_SPAN_TYPES:
                spans.add(note["text"][span["start"] : span["end"]])
    return spans


def _extract_text(out: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(out.iterdir()))


def _lines(out: Path, kind: str) -> Iterator[dict[str, object]]:
    for line in (out / f"{kind}.jsonl").read_text(encoding="utf-8").splitlines():
        yield json.loads(line)


def _export(hospital: Hospital, tmp_path: Path, pack: str | None) -> Path:
    if pack is not None:
        save_sharing(hospital.node, SharingConfig(pack=pack))
    out = tmp_path / f"extract-{pack}"
    export_deidentified(hospital.node, out)
    return out


@pytest.mark.parametrize("pack", PACKS)
def test_no_direct_identifier_of_any_patient_leaves(
    hospital: Hospital, tmp_path: Path, pack: str
) -> None:
    out = _export(hospital, tmp_path, pack)
    text = _extract_text(out)
    identifiers = _source_identifiers(hospital.source) | _store_identifiers(hospital.node)
    gold = _gold_spans(hospital.source)
    # A one-character surname would match anywhere: full names are checked instead.
    checked = {v for v in identifiers | gold if len(v) >= 2}
    assert len(checked) > 100 and len(gold) > 30  # the check is not vacuous
    leaked = sum(v in text for v in checked)  # a count: failures never print the values
    assert leaked == 0, f"{leaked} identifiers leaked under {pack}"


@pytest.mark.parametrize("pack", PACKS)
def test_counts_per_kind_match_the_store(hospital: Hospital, tmp_path: Path, pack: str) -> None:
    save_sharing(hospital.node, SharingConfig(pack=pack))
    report = export_deidentified(hospital.node, tmp_path / "out")
    with open_node(hospital.node) as node:
        rows = node.store.stats().rows
    expected = {kind: rows[table.name] for kind, table in TABLE_OF.items()}
    assert report.counts == expected
    assert report.pack == pack and report.notes_left_out == 0
    for kind, count in expected.items():
        assert len(list(_lines(tmp_path / "out", kind))) == count, kind
    assert expected["patient"] == 20 and expected["note"] > 0


def test_notes_are_scrubbed_and_still_read_as_notes(hospital: Hospital, tmp_path: Path) -> None:
    out = _export(hospital, tmp_path, "pipl")
    with open_node(hospital.node) as node:
        clear = {n.text for n in node.store.iter_records("note") if isinstance(n, Note)}
    notes = list(_lines(out, "note"))
    assert notes and all(isinstance(n["text"], str) and n["text"] for n in notes)
    assert not clear & {n["text"] for n in notes}  # every note was changed
    assert sum("[PERSON]" in str(n["text"]) for n in notes) > len(notes) // 2


def test_missing_sharing_file_uses_the_safe_default(hospital: Hospital, tmp_path: Path) -> None:
    assert not (hospital.node / SHARING_FILE).exists()
    assert load_sharing(hospital.node) == SharingConfig("hipaa-safe-harbor", True)
    report = export_deidentified(hospital.node, tmp_path / "out")
    assert report.pack == "hipaa-safe-harbor"
    for patient in _lines(tmp_path / "out", "patient"):
        assert isinstance(patient["flags"], list)
        assert patient["flags"][0] == "deid:hipaa-safe-harbor"
        assert str(patient["birth_date"]).endswith("-01-01") or patient["birth_date"] is None
        identity = patient["identity"]
        assert isinstance(identity, dict)
        assert identity["family_name"] is None and identity["national_id"] is None
    key = hospital.node / DEID_KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_same_key_gives_joinable_extracts(hospital: Hospital, tmp_path: Path) -> None:
    first = export_deidentified(hospital.node, tmp_path / "a").out
    second = export_deidentified(hospital.node, tmp_path / "b").out
    assert (first / "patient.jsonl").read_bytes() == (second / "patient.jsonl").read_bytes()
    patients = {p["source_id"] for p in _lines(first, "patient")}
    assert {c["patient_id"] for c in _lines(first, "condition")} <= patients


def test_scrub_notes_false_leaves_notes_out(hospital: Hospital, tmp_path: Path) -> None:
    save_sharing(hospital.node, SharingConfig(pack="pipl", scrub_notes=False))
    report = export_deidentified(hospital.node, tmp_path / "out")
    assert report.counts["note"] == 0 and report.notes_left_out > 0
    assert (tmp_path / "out" / "note.jsonl").read_text() == ""


def test_dates_are_iso(hospital: Hospital, tmp_path: Path) -> None:
    out = _export(hospital, tmp_path, "gdpr-pseudonymise")  # keeps dates as they are
    times = [e["start"] for e in _lines(out, "encounter") if e["start"] is not None]
    assert times and all(isinstance(datetime.fromisoformat(str(t)), datetime) for t in times)
    births = [p["birth_date"] for p in _lines(out, "patient")]
    assert all(date.fromisoformat(str(b)) for b in births if b is not None)


@pytest.mark.parametrize(
    "content", ['{"pack": "clear"}', "not json", '["pipl"]', '{"pack": "pipl", "x": 1}']
)
def test_bad_sharing_file_is_refused_and_nothing_written(
    hospital: Hospital, tmp_path: Path, content: str
) -> None:
    (hospital.node / SHARING_FILE).write_text(content, encoding="utf-8")
    with pytest.raises(NodeConfigError, match="sharing"):
        export_deidentified(hospital.node, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["node"]


def test_existing_out_is_never_overwritten(hospital: Hospital, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="pick a new --out"):
        export_deidentified(hospital.node, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_read_api_returns_what_was_ingested(hospital: Hospital) -> None:
    with open_node(hospital.node) as node:
        patients = list(node.store.iter_records("patient"))
        notes = list(node.store.iter_records("note"))
        assert all(isinstance(p, Patient) for p in patients)
        first = patients[0]
        assert isinstance(first, Patient)
        assert first.identity == node.store.patient_identity(first.source_id)
        assert first.identity != Identity()
        for n in notes:
            assert isinstance(n, Note) and n.text == node.store.note_text(n.source_id)
        with pytest.raises(UsageError, match="unknown record kind"):
            list(node.store.iter_records("person"))


def test_read_api_streams_in_batches(hospital: Hospital) -> None:
    with open_node(hospital.node) as whole, open_node(hospital.node, batch_size=3) as small:
        for kind in TABLE_OF:
            assert list(small.store.iter_records(kind)) == list(whole.store.iter_records(kind))


@pytest.mark.postgres
def test_extract_from_postgres(built: Hospital, tmp_path: Path, pg_schema_url: str) -> None:
    init_node(tmp_path / "pg", "h1", pg_schema_url)
    with open_node(tmp_path / "pg", batch_size=7) as node:
        node.store.ingest(read_any(built.source), source="h1")
        rows = node.store.stats().rows
    report = export_deidentified(tmp_path / "pg", tmp_path / "out")
    assert report.counts == {kind: rows[t.name] for kind, t in TABLE_OF.items()}
    text = _extract_text(tmp_path / "out")
    leaked = sum(len(v) >= 2 and v in text for v in _source_identifiers(built.source))
    assert leaked == 0, f"{leaked} identifiers leaked"


def test_cli_exports_and_reports_errors(hospital: Hospital, tmp_path: Path) -> None:
    import typer

    app = typer.Typer()
    app.command()(node_export)
    runner = CliRunner()
    done = runner.invoke(app, ["--node", str(hospital.node), "--out", str(tmp_path / "x")])
    assert done.exit_code == 0, done.output
    assert "hipaa-safe-harbor" in done.output and (tmp_path / "x" / "note.jsonl").exists()
    again = runner.invoke(app, ["--node", str(hospital.node), "--out", str(tmp_path / "x")])
    assert again.exit_code == UsageError.exit_code
