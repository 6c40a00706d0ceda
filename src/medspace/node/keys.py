"""Key files of a node directory: written atomically with mode 0600, checked on read.

Files (all JSON or PEM, never in the database):
`kek.key` the key-encryption key with its id; `kek.<id>.retired` a KEK kept only while a
rotation is in flight; `pseudonym.key` the HMAC key for patient pseudonyms;
`identity.pem` / `identity.pub.pem` the node's Ed25519 identity (PKCS8 / SPKI PEM);
`agreement.key` the node's X25519 key for key agreement with its peers (secure
aggregation) and for results sealed to it (emergency lookups). Nodes made before the
agreement key existed get one on first use.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from hashlib import sha256
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from medspace.node.errors import NodeConfigError, UnsafeKeyFileError
from medspace.store import Kek

KEK_FILE = "kek.key"
PSEUDONYM_FILE = "pseudonym.key"
IDENTITY_FILE = "identity.pem"
IDENTITY_PUBLIC_FILE = "identity.pub.pem"
AGREEMENT_FILE = "agreement.key"
LOCK_FILE = ".keys.lock"
SECRET_FILES = (KEK_FILE, PSEUDONYM_FILE, IDENTITY_FILE)
_KEK_FORMAT = "medspace-kek/1"
_PSEUDONYM_FORMAT = "medspace-pseudonym-key/1"
_AGREEMENT_FORMAT = "medspace-x25519-agreement-key/1"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write `data` to `path` atomically: temp file (mode 0600), fsync, rename, fsync dir.

    A crash leaves either the old file or the new one, never a torn one.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask must not widen or narrow what we asked for
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def check_private(path: Path) -> None:
    """Raise `UnsafeKeyFileError` if `path` is readable or writable by group or others."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise UnsafeKeyFileError(
            f"key file {path} has mode {mode:04o}, readable by group or others: run "
            f"`chmod 600 {path}` (and check who may have copied it)"
        )


def read_private(path: Path) -> bytes:
    """Read a secret file after checking its permissions."""
    try:
        check_private(path)
        return path.read_bytes()
    except FileNotFoundError:
        raise NodeConfigError(
            f"key file {path} is missing: restore it from the node's backup"
        ) from None


def _secret_doc(path: Path, fmt: str) -> tuple[str, bytes]:
    try:
        doc: Any = json.loads(read_private(path))
        if doc["format"] != fmt:
            raise ValueError
        return str(doc["id"]), base64.b64decode(doc["key"], validate=True)
    except (ValueError, KeyError, TypeError):
        raise NodeConfigError(f"key file {path} is damaged: restore it from backup") from None


def _secret_bytes(fmt: str, key_id: str, secret: bytes) -> bytes:
    doc = {"format": fmt, "id": key_id, "key": base64.b64encode(secret).decode()}
    return json.dumps(doc, indent=1).encode() + b"\n"


def write_kek(path: Path, kek: Kek) -> None:
    """Write a KEK file atomically (0600)."""
    atomic_write(path, _secret_bytes(_KEK_FORMAT, kek.key_id, kek.secret))


def read_kek(path: Path) -> Kek:
    """Read and check a KEK file."""
    key_id, secret = _secret_doc(path, _KEK_FORMAT)
    return Kek(key_id=key_id, secret=secret)


def write_pseudonym_key(path: Path, key_id: str, secret: bytes) -> None:
    """Write the pseudonym key file atomically (0600)."""
    atomic_write(path, _secret_bytes(_PSEUDONYM_FORMAT, key_id, secret))


def read_pseudonym_key(path: Path) -> tuple[str, bytes]:
    """(key id, 32-byte key) from the pseudonym key file."""
    key_id, secret = _secret_doc(path, _PSEUDONYM_FORMAT)
    if len(secret) != 32:
        raise NodeConfigError(f"key file {path} is damaged: restore it from backup")
    return key_id, secret


def write_agreement_key(path: Path, private: X25519PrivateKey) -> None:
    """Write the node's X25519 agreement key (0600)."""
    raw = private.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    atomic_write(path, _secret_bytes(_AGREEMENT_FORMAT, sha256(public).hexdigest()[:16], raw))


def read_agreement_key(path: Path) -> X25519PrivateKey:
    """Load the node's X25519 agreement key, making one first if the node has none."""
    if not path.exists():
        with FileKekKeeper(path.parent).lock():
            if not path.exists():
                write_agreement_key(path, X25519PrivateKey.generate())
    _key_id, raw = _secret_doc(path, _AGREEMENT_FORMAT)
    try:
        return X25519PrivateKey.from_private_bytes(raw)
    except ValueError:
        raise NodeConfigError(f"key file {path} is damaged: restore it from backup") from None


def identity_key_id(public: Ed25519PublicKey) -> str:
    """Short id of an Ed25519 public key: first 16 hex digits of SHA-256(raw key)."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return sha256(raw).hexdigest()[:16]


def write_identity(directory: Path, private: Ed25519PrivateKey) -> str:
    """Write the identity key pair (PKCS8 and SPKI PEM, both 0600); return its key id."""
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = private.public_key()
    public_pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    atomic_write(directory / IDENTITY_FILE, pem)
    atomic_write(directory / IDENTITY_PUBLIC_FILE, public_pem)
    return identity_key_id(public)


def read_identity(directory: Path) -> Ed25519PrivateKey:
    """Load the node's Ed25519 private key (checks permissions)."""
    path = directory / IDENTITY_FILE
    try:
        key = serialization.load_pem_private_key(read_private(path), password=None)
    except ValueError:
        raise NodeConfigError(f"key file {path} is damaged: restore it from backup") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise NodeConfigError(f"key file {path} is not an Ed25519 key: restore it from backup")
    return key


def read_identity_public(directory: Path) -> Ed25519PublicKey:
    """Load the node's Ed25519 public key."""
    path = directory / IDENTITY_PUBLIC_FILE
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError):
        raise NodeConfigError(
            f"public key file {path} is missing or damaged: restore it from backup"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise NodeConfigError(f"public key file {path} is not an Ed25519 key")
    return key


class FileKekKeeper:
    """The KEK as files in the node directory (`medspace.store.KekKeeper`)."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory

    def current(self) -> Kek:
        """The KEK in `kek.key`."""
        return read_kek(self._dir / KEK_FILE)

    def retired(self) -> list[Kek]:
        """KEKs in `kek.<id>.retired` files."""
        return [read_kek(p) for p in sorted(self._dir.glob("kek.*.retired"))]

    def keep(self, kek: Kek) -> None:
        """Write `kek.<id>.retired` atomically."""
        write_kek(self._retired_path(kek.key_id), kek)

    def make_current(self, kek: Kek) -> None:
        """Replace `kek.key` atomically."""
        write_kek(self._dir / KEK_FILE, kek)

    def discard(self, key_id: str) -> None:
        """Delete `kek.<id>.retired` if present."""
        path = self._retired_path(key_id)
        if path.exists():
            path.unlink()
            _fsync_dir(self._dir)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """An exclusive flock on `.keys.lock` in the node directory."""
        fd = os.open(self._dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _retired_path(self, key_id: str) -> Path:
        if not key_id.isalnum():
            raise NodeConfigError("a key id must be letters and digits only")
        return self._dir / f"kek.{key_id}.retired"
