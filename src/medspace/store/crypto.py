"""Envelope encryption for the store: AES-256-GCM under per-patient data keys.

Layout of every sealed value: 12-byte random nonce || ciphertext || 16-byte GCM tag
(NIST SP 800-38D; 96-bit nonces, never reused because each one is drawn at random and a
key seals far fewer than 2**32 values). Associated data binds a ciphertext to the table,
row (`source_id`) and field it was written for, so a ciphertext copied into another row
or field fails authentication instead of decrypting as someone else's data.

Data-encryption keys (DEKs) are wrapped with AES-256-GCM under the node's key-encryption
key (KEK) with associated data naming the DEK's owner; the KEK lives only in the node
directory, never in the database.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from medspace.store.errors import KeyMismatchError, TamperedDataError

KEY_BYTES = 32
NONCE_BYTES = 12
_FORMAT = "medspace/v1"
_KEK_CHECK_PLAINTEXT = b"medspace key-encryption key check"


@dataclass(frozen=True, slots=True)
class Kek:
    """A key-encryption key with its id. `repr` never shows the secret."""

    key_id: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise KeyMismatchError(
                f"key-encryption key {self.key_id} has {len(self.secret)} bytes, "
                f"expected {KEY_BYTES}: restore the node's key file from backup"
            )

    @classmethod
    def generate(cls) -> Kek:
        """A fresh random KEK with a random 16-hex-digit id."""
        return cls(key_id=os.urandom(8).hex(), secret=AESGCM.generate_key(bit_length=256))


def aad(table: str, source_id: str, field_name: str) -> bytes:
    """Associated data for a value of `table`.`field_name` in the row `source_id`.

    The source id is length-prefixed so no two (table, row, field) triples share bytes.
    """
    return f"{_FORMAT}|{table}|{len(source_id)}:{source_id}|{field_name}".encode()


def new_data_key() -> bytes:
    """A fresh random 256-bit data-encryption key."""
    return os.urandom(KEY_BYTES)


def seal(cipher: AESGCM, plaintext: bytes, associated: bytes) -> bytes:
    """Encrypt under `cipher` with a fresh random nonce; returns nonce || ciphertext || tag."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + cipher.encrypt(nonce, plaintext, associated)


def open_sealed(cipher: AESGCM, sealed: bytes, associated: bytes, what: str) -> bytes:
    """Decrypt a value made by `seal`. Raises `TamperedDataError` naming `what` on failure."""
    try:
        return cipher.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated)
    except (InvalidTag, ValueError) as exc:
        raise TamperedDataError(
            f"{what} failed authentication: the stored ciphertext was altered or moved "
            "from another row; restore the store from backup or re-ingest the source"
        ) from exc


def wrap_data_key(kek_cipher: AESGCM, dek: bytes, owner: str) -> bytes:
    """Wrap a DEK under the KEK, bound to its owner (the data_key row's source_id)."""
    return seal(kek_cipher, dek, aad("data_key", owner, "dek"))


def unwrap_data_key(kek_cipher: AESGCM, wrapped: bytes, owner: str) -> bytes:
    """Unwrap a DEK. Raises `KeyMismatchError` if the KEK is not the one that wrapped it."""
    try:
        return kek_cipher.decrypt(
            wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad("data_key", owner, "dek")
        )
    except (InvalidTag, ValueError) as exc:
        raise KeyMismatchError(
            "cannot unwrap data keys: the key file does not match this store (or the "
            "wrapped key was altered); restore the node's kek.key from backup"
        ) from exc


def kek_check_value(kek: Kek) -> bytes:
    """A sealed constant that proves, at open time, that `kek` is the store's KEK."""
    return seal(
        AESGCM(kek.secret), _KEK_CHECK_PLAINTEXT, aad("store_meta", kek.key_id, "kek_check")
    )


def verify_kek(kek: Kek, check_value: bytes) -> None:
    """Raise `KeyMismatchError` unless `check_value` was made by `kek_check_value(kek)`."""
    cipher = AESGCM(kek.secret)
    nonce, body = check_value[:NONCE_BYTES], check_value[NONCE_BYTES:]
    try:
        ok = cipher.decrypt(nonce, body, aad("store_meta", kek.key_id, "kek_check"))
    except (InvalidTag, ValueError):
        ok = b""
    if ok != _KEK_CHECK_PLAINTEXT:
        raise KeyMismatchError(
            "cannot unwrap data keys: the key file does not match this store; restore the "
            "node's kek.key from backup (a key file from another node or an old rotation "
            "will not work)"
        )


def pseudonym(pseudonym_key: bytes, source_id: str) -> str:
    """Keyed pseudonym of a patient: hex HMAC-SHA256(key, "patient:" + source_id)."""
    message = b"patient:" + source_id.encode("utf-8", "surrogatepass")
    return hmac.digest(pseudonym_key, message, "sha256").hex()
