"""Real exports ingest the same way into SQLite and PostgreSQL: the shared samples written
by other systems (Synthea FHIR, CDC HL7 v2) and a synthetic hospital in all formats."""

from __future__ import annotations

from pathlib import Path

import pytest

from medspace.connectors import read_any
from medspace.node import init_node, open_node

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture(scope="module")
def hospital(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from medspace.synth import generate

    out = tmp_path_factory.mktemp("synth") / "hospitals"
    generate(out, hospitals=1, patients=25, seed=5, locale="zh_CN")
    return out / "h1"


def test_shared_samples_ingest_with_nothing_quarantined(db_url: str | None, tmp_path: Path) -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared sample data not found at {SHARED_DATA.resolve()}")
    init_node(tmp_path / "n", "n", db_url)
    store = open_node(tmp_path / "n").store
    fhir = store.ingest(read_any(SHARED_DATA / "fhir-r4-bulk-10-patients"), source="fhir")
    hl7 = store.ingest(read_any(SHARED_DATA / "hl7v2"), source="hl7")
    assert (fhir.quarantined, hl7.quarantined) == (0, 0)
    assert fhir.stored == fhir.received > 3000
    assert hl7.stored == hl7.received == 2
    stats = store.stats()
    assert stats.rows["person"] == 13 + 2  # 13 Synthea patients, one per HL7 message
    assert stats.received == stats.stored + stats.skipped + stats.quarantined


@pytest.mark.parametrize("export", ["fhir/ndjson", "fhir/bundles", "hl7v2", "csv"])
def test_synthetic_hospital_ingests_every_format_and_balances(
    db_url: str | None, hospital: Path, export: str, tmp_path: Path
) -> None:
    init_node(tmp_path / "n", "n", db_url)
    store = open_node(tmp_path / "n").store
    report = store.ingest(read_any(hospital / export), source=export)
    assert report.quarantined == 0
    assert report.received == report.stored + report.skipped
    assert store.stats().rows["person"] == 25
