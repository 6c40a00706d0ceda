"""Sealed answers: hybrid encryption of a lookup summary to the asking node's X25519 key.

The hub routes answers but must not read them, so each responder encrypts its summary to
the asking node's agreement key (the key travels inside the asking node's *signed*
request, so the hub cannot swap in its own):

    ephemeral X25519 key pair (e, E); shared = X25519(e, recipient)
    key      = HKDF-SHA256(shared, salt = E || recipient, info = CONTEXT, length 32)
    sealed   = AES-256-GCM(key, random 96-bit nonce, summary, AAD)
    AAD      = CONTEXT || RFC 8785 JSON {"request", "requester", "responder"}

This is the ECIES / HPKE base-mode pattern (RFC 9180 §5.1 without its framing): a fresh
ephemeral key per answer gives every answer its own key; the AAD binds the answer to one
request between one responder and one requester, so an answer replayed into another
request, or relabelled as coming from another hospital, does not open.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from medspace.ledger import canonical_bytes
from medspace.lookup.errors import SealError

CONTEXT = b"medspace/lookup-seal/v1"
VERSION = 1
MAX_SEALED = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Binding:
    """What an answer is bound to: one request, from one responder, to one requester."""

    request: str
    requester: str
    responder: str

    def aad(self) -> bytes:
        """The associated data AES-GCM authenticates."""
        return CONTEXT + canonical_bytes(
            {"request": self.request, "requester": self.requester, "responder": self.responder}
        )


@dataclass(frozen=True, slots=True)
class Sealed:
    """One sealed answer: the ephemeral public key, the nonce and the ciphertext."""

    ephemeral: bytes
    nonce: bytes
    ciphertext: bytes

    def to_json(self) -> dict[str, Any]:
        """The JSON form that travels through the hub."""
        return {
            "v": VERSION,
            "epk": base64.b64encode(self.ephemeral).decode("ascii"),
            "nonce": base64.b64encode(self.nonce).decode("ascii"),
            "ct": base64.b64encode(self.ciphertext).decode("ascii"),
        }

    @classmethod
    def from_json(cls, value: object) -> Sealed:
        """Parse the JSON form; raises `SealError` for anything malformed."""
        if not isinstance(value, dict) or set(value) != {"v", "epk", "nonce", "ct"}:
            raise SealError("a sealed answer must be an object with exactly v, epk, nonce, ct")
        if value["v"] != VERSION:
            raise SealError(f"sealed answer version {value['v']!r} is not supported")
        try:
            parts = [base64.b64decode(value[k], validate=True) for k in ("epk", "nonce", "ct")]
        except (binascii.Error, TypeError, ValueError):
            raise SealError("a sealed answer field is not valid base64") from None
        ephemeral, nonce, ciphertext = parts
        if len(ephemeral) != 32 or len(nonce) != 12 or not 16 <= len(ciphertext) <= MAX_SEALED:
            raise SealError("a sealed answer has a key, nonce or ciphertext of the wrong size")
        return cls(ephemeral, nonce, ciphertext)


def _key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    if shared == bytes(32):
        # A low-order public key makes the shared secret all zero (RFC 7748 §6.1).
        raise SealError("the recipient or ephemeral key is a low-order point; refused")
    return HKDF(hashes.SHA256(), 32, salt=ephemeral + recipient, info=CONTEXT).derive(shared)


def seal(plaintext: bytes, recipient: X25519PublicKey, binding: Binding) -> Sealed:
    """Encrypt `plaintext` so that only the holder of `recipient`'s private key can read
    it, bound to `binding`."""
    ephemeral = X25519PrivateKey.generate()
    epk = ephemeral.public_key().public_bytes_raw()
    key = _key(ephemeral.exchange(recipient), epk, recipient.public_bytes_raw())
    nonce = os.urandom(12)
    return Sealed(epk, nonce, AESGCM(key).encrypt(nonce, plaintext, binding.aad()))


def open_sealed(sealed: Sealed, private: X25519PrivateKey, binding: Binding) -> bytes:
    """Decrypt `sealed` with the recipient's private key; raises `SealError` if the key is
    not the recipient's, the ciphertext was altered or the binding differs."""
    recipient = private.public_key().public_bytes_raw()
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(sealed.ephemeral))
    except ValueError:
        raise SealError("the sealed answer's ephemeral key is invalid") from None
    key = _key(shared, sealed.ephemeral, recipient)
    try:
        return AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, binding.aad())
    except InvalidTag:
        raise SealError(
            "a sealed answer did not open: it was not sealed to this node's agreement key, "
            "was altered on the way, or belongs to another request or hospital"
        ) from None
