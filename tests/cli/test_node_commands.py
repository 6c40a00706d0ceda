"""The node commands as a hospital's IT runs them: synth, init, ingest, stats, quarantine,
rotate-key. Behaviour from the user's side: exit codes and what is printed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medspace.cli import app

runner = CliRunner()

BAD_INPUTS = Path(__file__).resolve().parents[1] / "data" / "bad"


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def hospitals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "hospitals"
    invoke("synth", "--hospitals", "2", "--patients", "40", "--out", str(out), "--seed", "3")
    return out


def _stats_numbers(output: str) -> dict[str, int]:
    numbers = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if len(cells) == 2 and cells[1].replace(",", "").isdigit():
            numbers[cells[0]] = int(cells[1].replace(",", ""))
    return numbers


def test_synth_writes_every_format_and_the_ground_truth(hospitals: Path) -> None:
    assert (hospitals / "ground_truth.json").is_file()
    for hospital in ("h1", "h2"):
        assert any((hospitals / hospital / "fhir" / "ndjson").glob("*.ndjson"))
        assert any((hospitals / hospital / "hl7v2").glob("*.hl7"))
        assert (hospitals / hospital / "csv" / "mapping.yaml").is_file()


def test_init_ingest_stats_balance_counts(hospitals: Path, tmp_path: Path) -> None:
    node = tmp_path / "h1"
    invoke("node", "init", str(node), "--name", "h1")
    output = invoke(
        "node", "ingest", "--node", str(node), str(hospitals / "h1" / "fhir" / "ndjson")
    )
    assert "received" in output
    numbers = _stats_numbers(invoke("node", "stats", "--node", str(node)))
    assert numbers["patients"] == 40
    assert numbers["units received"] == (
        numbers["stored"] + numbers["skipped (type not mapped)"] + numbers["quarantined"]
    )
    assert numbers["quarantined"] == 0


def test_the_same_hospital_ingests_to_the_same_store_from_fhir_bundles_and_csv(
    hospitals: Path, tmp_path: Path
) -> None:
    tables = {}
    for fmt, sub in (("ndjson", "fhir/ndjson"), ("bundles", "fhir/bundles"), ("csv", "csv")):
        node = tmp_path / fmt
        invoke("node", "init", str(node), "--name", fmt)
        invoke("node", "ingest", "--node", str(node), str(hospitals / "h2" / sub))
        numbers = _stats_numbers(invoke("node", "stats", "--node", str(node)))
        tables[fmt] = {k: v for k, v in numbers.items() if k not in ("units received", "stored")}
    assert tables["ndjson"] == tables["bundles"] == tables["csv"]


def test_reingesting_the_same_source_does_not_duplicate(hospitals: Path, tmp_path: Path) -> None:
    node = tmp_path / "h1"
    invoke("node", "init", str(node), "--name", "h1")
    source = str(hospitals / "h1" / "hl7v2")
    invoke("node", "ingest", "--node", str(node), source)
    first = _stats_numbers(invoke("node", "stats", "--node", str(node)))
    invoke("node", "ingest", "--node", str(node), source)
    second = _stats_numbers(invoke("node", "stats", "--node", str(node)))
    for table in ("patients", "encounters", "conditions", "labs", "allergies"):
        assert second[table] == first[table], table
    assert second["units received"] == 2 * first["units received"]


def test_bad_inputs_are_quarantined_with_reasons_and_nothing_is_lost(tmp_path: Path) -> None:
    node = tmp_path / "n"
    invoke("node", "init", str(node), "--name", "n")
    invoke("node", "ingest", "--node", str(node), str(BAD_INPUTS))
    numbers = _stats_numbers(invoke("node", "stats", "--node", str(node)))
    assert numbers["quarantined"] > 0
    assert numbers["units received"] == (
        numbers["stored"] + numbers["skipped (type not mapped)"] + numbers["quarantined"]
    )
    listing = invoke("node", "quarantine", "--node", str(node), "--limit", "500")
    assert "reason" in listing and "row" in listing


def test_identifiers_never_reach_the_database_in_the_clear(hospitals: Path, tmp_path: Path) -> None:
    node = tmp_path / "h1"
    invoke("node", "init", str(node), "--name", "h1")
    invoke("node", "ingest", "--node", str(node), str(hospitals / "h1" / "csv"))
    import csv

    import yaml

    export = hospitals / "h1" / "csv"
    encoding = yaml.safe_load((export / "mapping.yaml").read_text()).get("encoding", "utf-8")
    with (export / "patients.csv").open(encoding=encoding) as f:
        first = next(csv.DictReader(f))
    secrets = [v for k, v in first.items() if k in ("ID_NO", "LXDH") and v]
    assert secrets, "the synthetic export should carry an ID or phone to look for"
    raw = b"".join(p.read_bytes() for p in node.glob("store.db*"))
    for secret in secrets:
        assert secret.encode("utf-8") not in raw
        assert secret.encode(encoding) not in raw
    with sqlite3.connect(node / "store.db") as db:
        assert db.execute("select count(*) from person").fetchone()[0] == 40


def test_rotate_key_keeps_the_data_readable(hospitals: Path, tmp_path: Path) -> None:
    node = tmp_path / "h1"
    invoke("node", "init", str(node), "--name", "h1")
    invoke("node", "ingest", "--node", str(node), str(hospitals / "h1" / "fhir" / "ndjson"))
    output = invoke("node", "rotate-key", "--node", str(node))
    assert "40 data keys re-wrapped" in " ".join(output.split())
    from medspace.node import open_node

    store = open_node(node).store
    assert store.patient_identity("H1-P000001") is not None


def test_missing_node_directory_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["node", "stats", "--node", str(tmp_path / "absent")])
    assert result.exit_code != 0
    assert "medspace node init" in result.output


def test_init_refuses_to_overwrite_an_existing_node(tmp_path: Path) -> None:
    invoke("node", "init", str(tmp_path / "n"), "--name", "n")
    result = runner.invoke(app, ["node", "init", str(tmp_path / "n"), "--name", "n"])
    assert result.exit_code != 0


@pytest.mark.postgres
def test_every_bad_input_ingests_into_postgresql_without_stopping_the_run(
    pg_schema_url: str, tmp_path: Path
) -> None:
    """PostgreSQL refuses some text SQLite takes (NUL characters): such units must reach
    quarantine, never abort the ingest."""
    node = tmp_path / "pg"
    invoke("node", "init", str(node), "--name", "pg", "--db", pg_schema_url)
    invoke("node", "ingest", "--node", str(node), str(BAD_INPUTS))
    numbers = _stats_numbers(invoke("node", "stats", "--node", str(node)))
    assert numbers["quarantined"] > 0
    assert numbers["units received"] == (
        numbers["stored"] + numbers["skipped (type not mapped)"] + numbers["quarantined"]
    )
