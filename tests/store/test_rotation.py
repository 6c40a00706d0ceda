"""KEK rotation: data stays readable, the old KEK stops working, no crash loses a key."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from medspace.node import FileKekKeeper, Node, open_node
from medspace.node.keys import read_kek, write_kek
from medspace.store import Kek, KeyMismatchError, StoreWriteError
from medspace.store import nodestore as nodestore_module
from medspace.store.crypto import aad

from .samples import identity, note, parsed, patient, rejected


def _fill(node: Node) -> None:
    node.store.ingest(
        [parsed(i, patient(i), note(i, patient_n=i)) for i in range(5)] + [rejected(9)],
        source="test",
    )


def _readable(node: Node) -> None:
    for i in range(5):
        assert node.store.patient_identity(f"P{i}") == identity(i)
        assert "chest pain" in node.store.note_text(f"N{i}")
    entry = node.store.quarantine()[0]
    assert node.store.read_quarantine_raw(entry.id) == rejected(9).raw


def _retired_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("kek.*.retired"))


def test_rotation_keeps_data_readable_and_retires_the_old_kek(
    node: Node, raw_db: sa.Engine
) -> None:
    _fill(node)
    old = read_kek(node.directory / "kek.key")
    report = node.store.rotate_key()
    assert report.old_kek_id == old.key_id
    assert report.rewrapped == 6  # five patients and the quarantine key
    assert read_kek(node.directory / "kek.key").key_id == report.new_kek_id
    assert _retired_files(node.directory) == []
    _readable(node)

    reopened = open_node(node.directory)  # nothing cached: every key is unwrapped again
    try:
        _readable(reopened)
    finally:
        reopened.close()

    # The old KEK unwraps none of the stored data keys ...
    cipher = AESGCM(old.secret)
    with raw_db.connect() as conn:
        rows = conn.execute(sa.text("select source_id, kek_id, wrapped from data_key")).all()
    assert {r.kek_id for r in rows} == {report.new_kek_id}
    for owner, _, wrapped in rows:
        with pytest.raises(InvalidTag):
            cipher.decrypt(wrapped[:12], wrapped[12:], aad("data_key", owner, "dek"))
    # ... and a node given the old key file back refuses to open.
    node.close()
    write_kek(node.directory / "kek.key", old)
    with pytest.raises(KeyMismatchError, match="the key file does not match this store"):
        open_node(node.directory)


def test_ingest_after_rotation_uses_the_new_kek(node: Node, raw_db: sa.Engine) -> None:
    _fill(node)
    report = node.store.rotate_key()
    node.store.ingest([parsed(1, patient(8))], source="test")
    with raw_db.connect() as conn:
        ids = conn.execute(sa.text("select distinct kek_id from data_key")).scalars().all()
    assert ids == [report.new_kek_id]
    assert node.store.patient_identity("P8") == identity(8)


def test_crash_before_the_commit_reopens_with_the_old_kek(node: Node) -> None:
    _fill(node)
    old = read_kek(node.directory / "kek.key")
    node.close()
    keeper = FileKekKeeper(node.directory)
    keeper.keep(old)  # what rotate_key does before its transaction ...
    keeper.make_current(Kek.generate())  # ... then the process dies
    reopened = open_node(node.directory)
    try:
        assert read_kek(node.directory / "kek.key") == old
        assert _retired_files(node.directory) == []
        _readable(reopened)
    finally:
        reopened.close()


def test_crash_after_the_commit_discards_the_retired_kek(node: Node) -> None:
    _fill(node)
    old = read_kek(node.directory / "kek.key")
    node.store.rotate_key()
    new = read_kek(node.directory / "kek.key")
    node.close()
    FileKekKeeper(node.directory).keep(old)  # the retired file a crash would leave behind
    reopened = open_node(node.directory)
    try:
        assert read_kek(node.directory / "kek.key") == new
        assert _retired_files(node.directory) == []
        _readable(reopened)
    finally:
        reopened.close()


def test_database_failure_during_rotation_keeps_the_old_kek(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(node)
    old = read_kek(node.directory / "kek.key")

    def broken(*_args: object) -> int:
        raise sa.exc.OperationalError("UPDATE data_key", {}, RuntimeError("disk I/O error"))

    monkeypatch.setattr(nodestore_module, "rewrap", broken)
    with pytest.raises(StoreWriteError, match="key rotation failed"):
        node.store.rotate_key()
    assert read_kek(node.directory / "kek.key") == old
    assert _retired_files(node.directory) == []
    assert node.store.kek_id == old.key_id
    _readable(node)


def test_a_commit_whose_reply_was_lost_settles_on_the_new_kek(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(node)
    real = nodestore_module.rewrap

    def committed_then_lost(*args: object) -> int:
        real(*args)  # type: ignore[arg-type]
        raise sa.exc.OperationalError("COMMIT", {}, RuntimeError("connection lost"))

    monkeypatch.setattr(nodestore_module, "rewrap", committed_then_lost)
    old = read_kek(node.directory / "kek.key")
    with pytest.raises(StoreWriteError, match="key rotation failed"):
        node.store.rotate_key()
    now = read_kek(node.directory / "kek.key")
    assert now != old
    assert node.store.kek_id == now.key_id
    assert _retired_files(node.directory) == []
    node.close()
    reopened = open_node(node.directory)
    try:
        _readable(reopened)
    finally:
        reopened.close()


def test_rotation_by_another_process_is_detected(node: Node) -> None:
    _fill(node)
    other = open_node(node.directory)
    try:
        other.store.rotate_key()
    finally:
        other.close()
    with pytest.raises(KeyMismatchError, match="rotated by another process"):
        node.store.ingest([parsed(1, patient(9))], source="test")
    assert node.store.patient_identity("P0") == identity(0)  # cached keys still work


def test_a_stranger_kek_among_retired_files_is_not_used(node: Node) -> None:
    _fill(node)
    node.close()
    keeper = FileKekKeeper(node.directory)
    keeper.keep(Kek.generate())
    keeper.make_current(Kek.generate())
    with pytest.raises(KeyMismatchError, match="does not match this store"):
        open_node(node.directory)
