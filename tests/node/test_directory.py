"""Node directory: config and key files, their permissions, and refusing unsafe states."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medspace.errors import ConfigError, UsageError
from medspace.node import (
    NodeConfigError,
    NodeExistsError,
    NodeNotFoundError,
    UnsafeKeyFileError,
    init_node,
    open_node,
)
from medspace.node.keys import atomic_write, read_kek
from medspace.store import StoreConfigError, StoreError

SECRET_FILES = ("kek.key", "pseudonym.key", "identity.pem")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_writes_config_and_private_key_files(tmp_path: Path) -> None:
    directory = tmp_path / "h1"
    config = init_node(directory, "h1")
    assert _mode(directory) == 0o700
    for name in (*SECRET_FILES, "identity.pub.pem", "node.json"):
        assert _mode(directory / name) == 0o600, name
    assert config.name == "h1"
    assert config.db_url == f"sqlite:///{directory / 'store.db'}"
    assert _mode(directory / "store.db") == 0o600
    doc = json.loads((directory / "node.json").read_text())
    assert doc["name"] == "h1"
    assert doc["db_url"] == config.db_url
    assert doc["key_ids"] == {
        "pseudonym": config.pseudonym_key_id,
        "identity": config.identity_key_id,
    }
    assert "key" not in json.dumps(doc["key_ids"]).lower().replace("key_ids", "")
    assert b"BEGIN PRIVATE KEY" in (directory / "identity.pem").read_bytes()  # PKCS8
    assert b"BEGIN PUBLIC KEY" in (directory / "identity.pub.pem").read_bytes()
    assert len(read_kek(directory / "kek.key").secret) == 32
    assert not list(directory.glob(".*.tmp"))


def test_keys_are_never_in_the_database(tmp_path: Path) -> None:
    directory = tmp_path / "h1"
    init_node(directory, "h1")
    kek = read_kek(directory / "kek.key")
    pseudonym_key = json.loads((directory / "pseudonym.key").read_text())["key"]
    data = (directory / "store.db").read_bytes()
    assert kek.secret not in data
    assert kek.secret.hex().encode() not in data
    assert pseudonym_key.encode() not in data


def test_open_node_gives_the_store_and_the_identity_key(tmp_path: Path) -> None:
    directory = tmp_path / "h1"
    config = init_node(directory, "h1")
    with open_node(directory) as node:
        assert node.config == config
        assert node.name == "h1"
        key = node.identity_private_key()
        assert isinstance(key, Ed25519PrivateKey)
        node.identity_public_key.verify(key.sign(b"hello hub"), b"hello hub")
        assert node.store.stats().runs == 0


def test_init_refuses_to_overwrite_an_existing_node(tmp_path: Path) -> None:
    directory = tmp_path / "h1"
    init_node(directory, "h1")
    before = {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}
    with pytest.raises(NodeExistsError, match="refusing to overwrite its keys"):
        init_node(directory, "h1")
    after = {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}
    assert after == before


def test_init_refuses_a_directory_with_stray_key_files(tmp_path: Path) -> None:
    (tmp_path / "kek.key").write_text("{}")
    with pytest.raises(NodeExistsError, match=r"kek\.key"):
        init_node(tmp_path, "h1")


def test_init_accepts_an_existing_empty_directory(tmp_path: Path) -> None:
    directory = tmp_path / "empty"
    directory.mkdir(mode=0o755)
    init_node(directory, "h1")
    assert _mode(directory) == 0o700


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "bad\nname"])
def test_init_refuses_a_bad_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError, match="node name"):
        init_node(tmp_path / "n", name)
    assert not (tmp_path / "n").exists()


def test_open_a_missing_node_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(NodeNotFoundError, match="medspace node init") as failure:
        open_node(tmp_path / "nowhere")
    assert isinstance(failure.value, ConfigError)


@pytest.mark.parametrize("name", SECRET_FILES)
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_open_refuses_a_key_file_others_can_read(tmp_path: Path, name: str, mode: int) -> None:
    directory = tmp_path / "h1"
    init_node(directory, "h1")
    os.chmod(directory / name, mode)
    with pytest.raises(UnsafeKeyFileError, match=re.escape(f"chmod 600 {directory / name}")):
        open_node(directory)
    os.chmod(directory / name, 0o600)
    open_node(directory).close()


def test_open_refuses_a_readable_retired_kek(tmp_path: Path) -> None:
    directory = tmp_path / "h1"
    init_node(directory, "h1")
    retired = directory / "kek.0123456789abcdef.retired"
    retired.write_bytes((directory / "kek.key").read_bytes())
    os.chmod(retired, 0o644)
    with pytest.raises(UnsafeKeyFileError, match="chmod 600"):
        open_node(directory)


def test_a_missing_key_file_is_reported(tmp_path: Path) -> None:
    directory = tmp_path / "h1"
    init_node(directory, "h1")
    (directory / "pseudonym.key").unlink()
    with pytest.raises(NodeConfigError, match=r"pseudonym\.key is missing"):
        open_node(directory)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("node.json", b"{not json"),  # truncated config
        ("node.json", b'{"format": "medspace-node/1", "name": "h1"}'),  # fields missing
        ("node.json", b'{"format": "other/9"}'),  # someone else's file
        ("kek.key", b'{"format": "medspace-kek/1", "id": "x", "key": "###"}'),  # bad base64
        ("pseudonym.key", b"[]"),  # not an object
        ("identity.pem", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
    ],
)
def test_damaged_files_are_reported(tmp_path: Path, name: str, content: bytes) -> None:
    directory = tmp_path / "h1"
    init_node(directory, "h1")
    atomic_write(directory / name, content)
    with pytest.raises(ConfigError, match="restore it from backup"), open_node(directory) as node:
        node.identity_private_key()


def test_another_nodes_pseudonym_key_is_refused(tmp_path: Path) -> None:
    init_node(tmp_path / "h1", "h1")
    init_node(tmp_path / "h2", "h2")
    atomic_write(
        tmp_path / "h1" / "pseudonym.key", (tmp_path / "h2" / "pseudonym.key").read_bytes()
    )
    with pytest.raises(NodeConfigError, match=r"pseudonym\.key"):
        open_node(tmp_path / "h1")


def test_failed_store_creation_leaves_no_key_files(tmp_path: Path) -> None:
    directory = tmp_path / "h1"
    with pytest.raises(StoreError, match="cannot open the store"):
        init_node(directory, "h1", "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    assert sorted(p.name for p in directory.iterdir() if not p.name.startswith(".")) == []
    init_node(directory, "h1")  # the directory can be used again


def test_unsupported_database_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreConfigError, match="not supported"):
        init_node(tmp_path / "h1", "h1", "mysql://root@localhost/x")


def test_a_database_holding_another_nodes_store_is_refused(tmp_path: Path) -> None:
    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    init_node(tmp_path / "h1", "h1", shared)
    with pytest.raises(StoreConfigError, match="another node's MedSpace store"):
        init_node(tmp_path / "h2", "h2", shared)
    assert not (tmp_path / "h2" / "kek.key").exists()


def test_atomic_write_replaces_whole_files_with_mode_0600(tmp_path: Path) -> None:
    target = tmp_path / "f"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert _mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


@pytest.mark.postgres
def test_a_node_can_keep_its_store_in_postgresql(tmp_path: Path, pg_schema_url: str) -> None:
    config = init_node(tmp_path / "h1", "h1", pg_schema_url)
    assert config.db_url == pg_schema_url
    assert not (tmp_path / "h1" / "store.db").exists()
    with open_node(tmp_path / "h1") as node:
        assert node.store.stats().runs == 0
