"""Tokens at ingest and by `medspace node linkage ...`, on SQLite and PostgreSQL; the key
file's safety; nothing identifying in the database."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from medspace.connectors.base import Parsed
from medspace.linkage import KEY_FILE, LinkageKey, probe, read_key_file, tokens_for, write_key_file
from medspace.linkage.cli import app
from medspace.model import Identity, Patient
from medspace.node import init_node, open_node
from medspace.synth import make_resident_id

runner = CliRunner()
BORN = date(1961, 3, 14)
RID = make_resident_id("110105", BORN, 11)


def patient(source_id: str, family: str, given: str, nid: str | None = RID) -> Patient:
    return Patient(
        source_id=source_id,
        sex="male",
        birth_date=BORN,
        identity=Identity(
            family_name=family,
            given_name=given,
            national_id=nid,
            national_id_system="CN-RID" if nid else None,
            phone="+86-138-0013-8000",
        ),
    )


def ingest(node_dir: Path, *patients: Patient) -> None:
    units = [Parsed("test", f"line {i}", (p,)) for i, p in enumerate(patients, start=1)]
    with open_node(node_dir) as node:
        node.store.ingest(units, source="test")


def token_rows(node_dir: Path) -> dict[str, tuple[bytes | None, bytes | None]]:
    with open_node(node_dir) as node, node.store.engine.connect() as conn:
        rows = conn.execute(sa.text("select person_source_id, exact_token, clk from linkage_token"))
        return {r[0]: (r[1], r[2]) for r in rows}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def node_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    url = None if request.param == "sqlite" else request.getfixturevalue("pg_schema_url")
    directory = tmp_path / "node"
    init_node(directory, "h1", url)
    yield directory


@pytest.fixture
def keyfile(tmp_path: Path) -> Path:
    path = tmp_path / "network-linkage.key"
    result = runner.invoke(app, ["keygen", str(path)])
    assert result.exit_code == 0, result.output
    return path


def test_keygen_writes_a_private_key_and_never_overwrites(keyfile: Path) -> None:
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    key = read_key_file(keyfile)
    again = runner.invoke(app, ["keygen", str(keyfile)])
    assert again.exit_code == 4 and "refusing to overwrite" in again.output
    assert read_key_file(keyfile) == key


def test_a_key_file_others_can_read_is_refused(keyfile: Path) -> None:
    keyfile.chmod(0o644)
    with pytest.raises(Exception, match="chmod 600"):
        read_key_file(keyfile)


def test_a_damaged_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b'{"format": "medspace-linkage-key/1", "id": "00", "key": "AAAA"}')
    os.close(fd)
    with pytest.raises(Exception, match="damaged"):
        read_key_file(path)


def test_without_a_key_ingest_writes_no_tokens(node_dir: Path) -> None:
    ingest(node_dir, patient("P1", "张", "建华"))
    assert token_rows(node_dir) == {}
    result = runner.invoke(app, ["index", "--node", str(node_dir)])
    assert result.exit_code == 4 and "set-key" in result.output


def test_set_key_indexes_stored_patients_and_ingest_keeps_the_index_current(
    node_dir: Path, keyfile: Path
) -> None:
    ingest(node_dir, patient("P1", "张", "建华"), patient("P2", "Smith", "John", nid=None))
    result = runner.invoke(app, ["set-key", "--node", str(node_dir), str(keyfile)])
    assert result.exit_code == 0, result.output
    assert "2 patients indexed" in result.output
    assert stat.S_IMODE((node_dir / KEY_FILE).stat().st_mode) == 0o600
    before = token_rows(node_dir)
    assert set(before) == {"P1", "P2"} and before["P2"][0] is None  # P2 has no ID
    # A new patient is indexed as it is ingested; a re-ingested one gets new tokens.
    ingest(node_dir, patient("P3", "王", "伟", nid=None), patient("P2", "Smith", "Jon", nid=None))
    after = token_rows(node_dir)
    assert set(after) == {"P1", "P2", "P3"}
    assert after["P2"][1] != before["P2"][1] and after["P1"] == before["P1"]
    key = read_key_file(keyfile)
    with open_node(node_dir) as node:
        assert node.linkage_key == key
        found = probe(node.store, tokens_for(key, national_id=RID, id_system="CN-RID"))
        assert [(m.person_source_id, m.kind) for m in found] == [("P1", "exact")]
        fuzzy = probe(node.store, tokens_for(key, name="John Smith", birth_date=BORN, sex="M"))
        assert [m.person_source_id for m in fuzzy] == ["P2"] and fuzzy[0].kind == "fuzzy"


def test_index_recomputes_everything_under_the_current_key(node_dir: Path, keyfile: Path) -> None:
    ingest(node_dir, patient("P1", "张", "建华"))
    assert runner.invoke(app, ["set-key", "--node", str(node_dir), str(keyfile)]).exit_code == 0
    first = token_rows(node_dir)
    other = keyfile.with_name("other.key")
    write_key_file(other, LinkageKey.generate())
    refused = runner.invoke(app, ["set-key", "--node", str(node_dir), str(other)])
    assert refused.exit_code == 4 and "--replace" in refused.output
    assert token_rows(node_dir) == first
    replaced = runner.invoke(app, ["set-key", "--node", str(node_dir), str(other), "--replace"])
    assert replaced.exit_code == 0, replaced.output
    assert token_rows(node_dir)["P1"] != first["P1"]
    result = runner.invoke(app, ["index", "--node", str(node_dir)])
    assert result.exit_code == 0 and "1 patients indexed" in result.output


def test_a_store_made_before_linkage_gets_its_table(tmp_path: Path) -> None:
    directory = tmp_path / "old"
    init_node(directory, "old")
    ingest(directory, patient("P1", "张", "建华"))
    engine = sa.create_engine(f"sqlite:///{directory / 'store.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("drop table linkage_token"))
    engine.dispose()
    write_key_file(directory / KEY_FILE, LinkageKey.generate())
    result = runner.invoke(app, ["index", "--node", str(directory)])
    assert result.exit_code == 0 and "1 patients indexed" in result.output


def test_the_database_holds_no_identifier_in_the_clear(tmp_path: Path) -> None:
    directory = tmp_path / "node"
    init_node(directory, "h1")
    write_key_file(directory / KEY_FILE, LinkageKey.generate())
    ingest(directory, patient("P1", "Ouyang-Testperson", "Nana"), patient("P2", "欧阳", "娜娜"))
    assert len(token_rows(directory)) == 2
    with open_node(directory) as node:
        node.store.engine.dispose()  # checkpoint the WAL into the file
    raw = b"".join(p.read_bytes() for p in directory.glob("store.db*"))
    # (The birth date is kept in the clear by design, for analytics: see store/schema.py.)
    for secret in (RID, RID[:17], "Ouyang", "Testperson", "Nana", "欧阳", "娜娜", "ouyang"):
        assert secret.encode() not in raw, secret
