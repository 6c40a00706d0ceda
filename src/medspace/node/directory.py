"""Create and open a node directory: config, keys (0600, directory 0700) and the store."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from medspace.errors import UsageError
from medspace.linkage.index import LinkageIndexer
from medspace.linkage.key import KEY_FILE as LINKAGE_KEY_FILE
from medspace.linkage.key import LinkageKey, read_key_file
from medspace.node import keys
from medspace.node.config import CONFIG_FILE, NodeConfig
from medspace.node.errors import NodeConfigError, NodeExistsError, NodeNotFoundError
from medspace.store import DEFAULT_BATCH_SIZE, Kek, NodeStore

_NAME_MAX = 100


class Node:
    """An opened node directory: its config, keys and store. Close it when done."""

    def __init__(
        self,
        config: NodeConfig,
        store: NodeStore,
        public_key: Ed25519PublicKey,
        linkage_key: LinkageKey | None = None,
    ):
        self.config = config
        self.store = store
        self.identity_public_key = public_key
        #: The network linkage key from `linkage.key`, None until a steward installs it.
        self.linkage_key = linkage_key

    @property
    def directory(self) -> Path:
        """The node directory."""
        return self.config.directory

    @property
    def name(self) -> str:
        """The node's name."""
        return self.config.name

    def identity_private_key(self) -> Ed25519PrivateKey:
        """Load the node's Ed25519 signing key from `identity.pem` (permissions checked)."""
        return keys.read_identity(self.directory)

    def agreement_private_key(self) -> X25519PrivateKey:
        """The node's X25519 agreement key from `agreement.key` (made on first use)."""
        return keys.read_agreement_key(self.directory / keys.AGREEMENT_FILE)

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    def __enter__(self) -> Node:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _check_name(name: str) -> None:
    if not name.strip() or len(name) > _NAME_MAX or not name.isprintable():
        raise UsageError(
            f"node name must be 1 to {_NAME_MAX} printable characters, e.g. 'h1' or "
            "'General Hospital'"
        )


def _existing_node_files(directory: Path) -> list[str]:
    names = [CONFIG_FILE, *keys.SECRET_FILES, keys.IDENTITY_PUBLIC_FILE]
    found = [n for n in names if (directory / n).exists()]
    found += [p.name for p in directory.glob("kek.*.retired")]
    return found


def init_node(directory: Path, name: str, db_url: str | None = None) -> NodeConfig:
    """Create a node: DIR (0700) with node.json, fresh keys (0600) and an empty store.

    `db_url` defaults to `sqlite:///DIR/store.db`. Refuses a directory that already
    holds a node or key files (`NodeExistsError`); if the store cannot be created, the
    files written so far are removed and the error propagates.
    """
    _check_name(name)
    directory = Path(directory).absolute()
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} is a file, not a directory: pick another node path")
    if directory.is_dir() and (found := _existing_node_files(directory)):
        raise NodeExistsError(
            f"{directory} already holds a node ({', '.join(sorted(found))}): refusing to "
            "overwrite its keys. Open it with `open_node`, or pick an empty directory"
        )
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    url = db_url or f"sqlite:///{directory / 'store.db'}"
    written: list[Path] = []
    if db_url is None and not (directory / "store.db").exists():
        written += [directory / f"store.db{suffix}" for suffix in ("", "-wal", "-shm")]
    try:
        kek = Kek.generate()
        keys.write_kek(directory / keys.KEK_FILE, kek)
        written.append(directory / keys.KEK_FILE)
        pseudonym_id, pseudonym_key = os.urandom(8).hex(), os.urandom(32)
        keys.write_pseudonym_key(directory / keys.PSEUDONYM_FILE, pseudonym_id, pseudonym_key)
        written.append(directory / keys.PSEUDONYM_FILE)
        written += [directory / keys.IDENTITY_FILE, directory / keys.IDENTITY_PUBLIC_FILE]
        identity_id = keys.write_identity(directory, Ed25519PrivateKey.generate())
        written.append(directory / keys.AGREEMENT_FILE)
        keys.write_agreement_key(directory / keys.AGREEMENT_FILE, X25519PrivateKey.generate())
        keeper = keys.FileKekKeeper(directory)
        NodeStore.open(url, keeper=keeper, pseudonym_key=pseudonym_key, create=True).close()
        if db_url is None:
            # The default SQLite file holds quasi-identifiers; SQLite gives its -wal and
            # -shm files the database file's mode, so they are private too.
            os.chmod(directory / "store.db", 0o600)
        config = NodeConfig(
            directory=directory,
            name=name,
            db_url=url,
            created=datetime.now(UTC).replace(microsecond=0),
            pseudonym_key_id=pseudonym_id,
            identity_key_id=identity_id,
        )
        keys.atomic_write(directory / CONFIG_FILE, config.to_json())
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return config


def open_node(directory: Path, *, batch_size: int = DEFAULT_BATCH_SIZE) -> Node:
    """Open a node: read node.json, check and load its keys, open its store.

    `batch_size` is the number of source units the store writes per transaction.

    When the directory holds `linkage.key` (the network linkage key), every ingest also
    writes the patients' linkage tokens and `Node.linkage_key` is set.

    Raises `NodeNotFoundError` (no node there; says what to run), `UnsafeKeyFileError`
    (a key file readable by group/others; says `chmod 600 FILE`), `NodeConfigError`
    (damaged files), `KeyMismatchError` (kek.key does not match the store),
    `LinkageKeyError` (linkage.key unsafe or damaged).
    """
    directory = Path(directory).absolute()
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise NodeNotFoundError(
            f"no MedSpace node at {directory}: create one with `medspace node init "
            f"{directory} --name NAME` (medspace.node.init_node), or check the path"
        )
    config = NodeConfig.from_json(config_path.read_bytes(), directory)
    for secret in keys.SECRET_FILES:
        path = directory / secret
        if not path.exists():
            raise NodeConfigError(f"key file {path} is missing: restore it from backup")
        keys.check_private(path)
    for retired in directory.glob("kek.*.retired"):
        keys.check_private(retired)
    pseudonym_id, pseudonym_key = keys.read_pseudonym_key(directory / keys.PSEUDONYM_FILE)
    if pseudonym_id != config.pseudonym_key_id:
        raise NodeConfigError(
            f"pseudonym.key has id {pseudonym_id} but node.json expects "
            f"{config.pseudonym_key_id}: restore the node's own pseudonym.key from backup"
        )
    public = keys.read_identity_public(directory)
    if keys.identity_key_id(public) != config.identity_key_id:
        raise NodeConfigError(
            "identity.pub.pem does not match the identity key id in node.json: restore "
            "the node's own identity files from backup"
        )
    linkage_key = None
    if (directory / LINKAGE_KEY_FILE).exists():
        linkage_key = read_key_file(directory / LINKAGE_KEY_FILE)
    store = NodeStore.open(
        config.db_url,
        keeper=keys.FileKekKeeper(directory),
        pseudonym_key=pseudonym_key,
        batch_size=batch_size,
        indexer=None if linkage_key is None else LinkageIndexer(linkage_key),
    )
    return Node(config, store, public, linkage_key)
