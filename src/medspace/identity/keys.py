"""Ed25519 keys for nodes and for the hub's token signer, and their files.

Private keys are written PKCS#8 PEM with mode 0600 and refused on read when group or
others can read them. Public keys travel as 32 raw bytes (RFC 8032), shown as base64.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from medspace.errors import ConfigError
from medspace.identity.errors import NodeKeyError


def generate_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 private key."""
    return Ed25519PrivateKey.generate()


def write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    """Write `key` to a new file with mode 0600. Raises `ConfigError` if `path` exists."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_secret_file(path, pem)


def write_secret_file(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600 (never widening it first) and write `data`.

    Raises `ConfigError` if the file already exists: keys are never silently replaced.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(
            f"{path} already exists; remove it first or choose another path"
        ) from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def read_private_key(path: Path) -> Ed25519PrivateKey:
    """Read an Ed25519 private key written by `write_private_key`.

    Raises `ConfigError` if the file is missing, readable by group or others, or not an
    Ed25519 PKCS#8 PEM key.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist; create the key first") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} is readable by others; run `chmod 600 {path}`")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(f"{path} is not a PEM private key; recreate it") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 key; recreate it")
    return key


def public_key_bytes(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    """The 32 raw bytes of the public key (of a private key's public half)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_text(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The public key as standard base64 of its 32 raw bytes (for files, CLI and API)."""
    return base64.b64encode(public_key_bytes(key)).decode("ascii")


def parse_public_key(data: bytes | str) -> Ed25519PublicKey:
    """Parse a public key from 32 raw bytes or their base64 text.

    Raises `NodeKeyError` if it is not a 32-byte Ed25519 public key.
    """
    if isinstance(data, str):
        try:
            data = base64.b64decode(data.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise NodeKeyError("public key is not valid base64; copy it again") from None
    if len(data) != 32:
        raise NodeKeyError("public key must be 32 bytes of Ed25519; copy it again")
    try:
        return Ed25519PublicKey.from_public_bytes(data)
    except ValueError:
        raise NodeKeyError("public key is not a valid Ed25519 key; copy it again") from None


def fingerprint(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """SHA-256 of the raw public key, hex: what a steward compares out of band."""
    return hashlib.sha256(public_key_bytes(key)).hexdigest()
