"""Answer receipts: each responder signs what it answered, so the hub cannot change it.

The hub routes every answer. Sealing keeps it from reading them, but sealing alone does
not stop it from writing them: the asking node's agreement key is in the request, so
anyone can seal a made-up summary to it, or replace a hospital's "match" (with its
allergy list) by "no-match" and leave the result looking complete. So each responder
signs, with its Ed25519 identity key, a receipt of exactly what it sent:

    signature over CONTEXT || RFC 8785 JSON {request, requester, responder, status,
                                             answer, sealed: SHA-256 of the sealed answer,
                                             reason: a refusal's or error's reason}

The asking node rebuilds that statement from the line it received and checks the
signature with the responder's identity key (pinned on first contact, as responders pin
the asking node's). An answer whose receipt does not verify is shown as unverified and
makes the result partial.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from medspace.ledger import canonical_bytes
from medspace.lookup.seal import Sealed

CONTEXT = b"medspace/lookup-receipt/v1"


@dataclass(frozen=True, slots=True)
class Receipt:
    """What one responder answered to one request."""

    request: str
    requester: str
    responder: str
    status: str  # ok, refused, error
    answer: str | None  # match, no-match (status ok)
    sealed: str | None  # SHA-256 hex of the sealed answer (a match)
    reason: str | None = None  # why it refused or failed, as the node said it

    def statement(self) -> bytes:
        """The bytes the responder signs."""
        return CONTEXT + canonical_bytes(
            {
                "request": self.request,
                "requester": self.requester,
                "responder": self.responder,
                "status": self.status,
                "answer": self.answer,
                "sealed": self.sealed,
                "reason": self.reason,
            }
        )

    def sign(self, key: Ed25519PrivateKey) -> str:
        """The responder's signature, base64."""
        return base64.b64encode(key.sign(self.statement())).decode("ascii")

    def verifies(self, key: Ed25519PublicKey, signature: object) -> bool:
        """Whether `signature` (base64) is the responder's over this receipt."""
        if not isinstance(signature, str) or len(signature) > 200:
            return False
        try:
            key.verify(base64.b64decode(signature, validate=True), self.statement())
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True


def sealed_digest(sealed: Sealed) -> str:
    """SHA-256 hex over a sealed answer's ephemeral key, nonce and ciphertext."""
    return hashlib.sha256(sealed.ephemeral + sealed.nonce + sealed.ciphertext).hexdigest()


__all__ = ["Receipt", "sealed_digest"]
