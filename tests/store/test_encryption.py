"""Direct identifiers, note text and quarantined bytes exist in the database only encrypted."""

from __future__ import annotations

import hmac
import json
from hashlib import sha256
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from medspace.errors import CryptoError
from medspace.node import Node, open_node
from medspace.node.keys import read_kek, read_pseudonym_key, write_kek
from medspace.store import Kek, KeyMismatchError, TamperedDataError

from .samples import SECRETS, condition, identity, note, parsed, patient, rejected


def _ingest_secrets(node: Node) -> None:
    node.store.ingest(
        [
            parsed(1, patient(0)),
            parsed(2, note(1), condition(1)),
            parsed(3, patient(1), note(2, patient_n=1)),
            rejected(4),
        ],
        source="test",
    )


def _database_text(node: Node) -> bytes:
    """Everything the database holds for this node, as bytes to search."""
    url = sa.make_url(node.config.db_url)
    if url.get_backend_name() == "sqlite":
        node.close()  # checkpoint the WAL; scan every file SQLite may have written
        db = Path(url.database or "")
        return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    engine = sa.create_engine(node.config.db_url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                sa.text("select tablename from pg_tables where schemaname = current_schema()")
            ).scalars()
            dump = [
                conn.execute(sa.text(f'select row_to_json(t)::text from "{name}" t')).scalars()
                for name in list(tables)
            ]
            return "\n".join(row for rows in dump for row in rows).encode()
    finally:
        engine.dispose()


def test_identifiers_never_appear_in_the_clear_in_the_database(node: Node) -> None:
    _ingest_secrets(node)
    pseudonym = node.store.pseudonym("P0")
    data = _database_text(node)
    # Positive controls: the scan sees clear analytic values, so a miss below is meaningful.
    assert b"I20.9" in data
    assert pseudonym.encode() in data
    for label, secret in SECRETS.items():
        raw = secret.encode()
        assert raw not in data, f"{label} stored in the clear"
        assert raw.hex().encode() not in data, f"{label} stored as clear bytes"
    for word in ("Xiuying", "欧阳", "Jianguo", "landlord", "胸痛"):
        assert word.encode() not in data, "a fragment of an identifier is in the clear"


def test_encrypted_fields_decrypt_for_the_node(node: Node) -> None:
    _ingest_secrets(node)
    assert node.store.patient_identity("P0") == identity(0)
    assert node.store.patient_identity("P1") == identity(1)
    assert SECRETS["chinese note"] in node.store.note_text("N1")
    entry = node.store.quarantine()[0]
    assert node.store.read_quarantine_raw(entry.id) == rejected(4).raw


def test_wrong_kek_fails_with_crypto_error(node: Node, node_dir: Path) -> None:
    _ingest_secrets(node)
    node.close()
    write_kek(node_dir / "kek.key", Kek.generate())
    with pytest.raises(CryptoError, match="the key file does not match this store"):
        open_node(node_dir)


def test_kek_with_the_right_id_but_wrong_bytes_fails(node: Node, node_dir: Path) -> None:
    _ingest_secrets(node)
    node.close()
    real = read_kek(node_dir / "kek.key")
    write_kek(node_dir / "kek.key", Kek(real.key_id, bytes(32)))
    with pytest.raises(KeyMismatchError, match="cannot unwrap data keys"):
        open_node(node_dir)


def test_data_key_wrapped_under_another_kek_fails(node: Node, raw_db: sa.Engine) -> None:
    _ingest_secrets(node)
    other = AESGCM(Kek.generate().secret)
    with raw_db.begin() as conn:
        nonce = bytes(12)
        forged = nonce + other.encrypt(nonce, bytes(32), b"")
        conn.execute(
            sa.text("update data_key set wrapped = :w where source_id = 'patient:P0'"),
            {"w": forged},
        )
    reopened = open_node(node.directory)
    try:
        with pytest.raises(KeyMismatchError, match="cannot unwrap data keys"):
            reopened.store.patient_identity("P0")
        assert reopened.store.patient_identity("P1") == identity(1)  # other patients unharmed
    finally:
        reopened.close()


def _flip_last_byte(raw_db: sa.Engine, table: str, column: str, source_id: str) -> None:
    with raw_db.begin() as conn:
        value = conn.execute(
            sa.text(f"select {column} from {table} where source_id = :s"), {"s": source_id}
        ).scalar_one()
        changed = bytes(value[:-1]) + bytes([value[-1] ^ 1])
        conn.execute(
            sa.text(f"update {table} set {column} = :v where source_id = :s"),
            {"v": changed, "s": source_id},
        )


@pytest.mark.parametrize(
    ("table", "column", "source_id", "read"),
    [
        # identity ciphertext altered
        ("person", "identity_sealed", "P0", lambda s: s.patient_identity("P0")),
        # note text ciphertext altered
        ("note", "text_sealed", "N1", lambda s: s.note_text("N1")),
    ],
)
def test_tampered_ciphertext_fails(
    node: Node, raw_db: sa.Engine, table: str, column: str, source_id: str, read: object
) -> None:
    _ingest_secrets(node)
    _flip_last_byte(raw_db, table, column, source_id)
    with pytest.raises(TamperedDataError, match="failed authentication"):
        read(node.store)  # type: ignore[operator]


def test_tampered_quarantine_bytes_fail(node: Node, raw_db: sa.Engine) -> None:
    _ingest_secrets(node)
    entry = node.store.quarantine()[0]
    with raw_db.begin() as conn:
        source_id = conn.execute(
            sa.text("select source_id from quarantine where id = :i"), {"i": entry.id}
        ).scalar_one()
    _flip_last_byte(raw_db, "quarantine", "raw_sealed", source_id)
    with pytest.raises(TamperedDataError):
        node.store.read_quarantine_raw(entry.id)


def _swap(raw_db: sa.Engine, table: str, column: str, a: str, b: str) -> None:
    with raw_db.begin() as conn:
        get = sa.text(f"select {column} from {table} where source_id = :s")
        va = conn.execute(get, {"s": a}).scalar_one()
        vb = conn.execute(get, {"s": b}).scalar_one()
        put = sa.text(f"update {table} set {column} = :v where source_id = :s")
        conn.execute(put, {"v": vb, "s": a})
        conn.execute(put, {"v": va, "s": b})


def test_swapping_two_patients_identity_ciphertexts_fails(node: Node, raw_db: sa.Engine) -> None:
    _ingest_secrets(node)
    _swap(raw_db, "person", "identity_sealed", "P0", "P1")
    for source_id in ("P0", "P1"):
        with pytest.raises(TamperedDataError):
            node.store.patient_identity(source_id)


def test_swapping_notes_of_one_patient_fails_by_associated_data(
    node: Node, raw_db: sa.Engine
) -> None:
    # Same patient, so the same data key: only the associated data (row id) tells them apart.
    node.store.ingest([parsed(1, note(1)), parsed(2, note(2))], source="test")
    _swap(raw_db, "note", "text_sealed", "N1", "N2")
    with pytest.raises(TamperedDataError):
        node.store.note_text("N1")


def test_swapping_wrapped_data_keys_between_patients_fails(node: Node, raw_db: sa.Engine) -> None:
    _ingest_secrets(node)
    _swap(raw_db, "data_key", "wrapped", "patient:P0", "patient:P1")
    reopened = open_node(node.directory)  # no cached data keys
    try:
        with pytest.raises(KeyMismatchError):
            reopened.store.patient_identity("P0")
    finally:
        reopened.close()


def test_pseudonym_is_hmac_sha256_of_the_patient_id(node: Node, raw_db: sa.Engine) -> None:
    node.store.ingest([parsed(1, patient(0))], source="test")
    _, key = read_pseudonym_key(node.directory / "pseudonym.key")
    expected = hmac.new(key, b"patient:P0", sha256).hexdigest()
    assert node.store.pseudonym("P0") == expected
    with raw_db.connect() as conn:
        stored = conn.execute(sa.text("select pseudonym from person")).scalar_one()
    assert stored == expected
    assert node.store.pseudonym("P1") != expected


def test_identity_plaintext_is_canonical_json(node: Node, raw_db: sa.Engine) -> None:
    node.store.ingest([parsed(1, patient(0))], source="test")
    from medspace.store.rows import identity_from_json, identity_to_json

    text = identity_to_json(identity(0))
    assert json.loads(text)["national_id"] == SECRETS["national id"]
    assert list(json.loads(text)) == sorted(json.loads(text))
    assert identity_from_json(text) == identity(0)
