"""Checkpoints (c2sp.org/tlog-checkpoint) and witness cosignatures (c2sp.org/tlog-cosignature).

A checkpoint body is three lines: origin, decimal tree size (no leading zeroes), base64
root hash. The log signs it as a signed note (Ed25519, type 0x01, key name = origin).
A witness cosignature is a note signature of type 0x04 whose bytes are
key ID (4) || timestamp (u64 big-endian, POSIX seconds) || Ed25519 signature (64) over

    cosignature/v1\\n
    time <timestamp>\\n
    <the whole checkpoint body>

MedSpace checkpoints carry no extension lines; bodies with them are refused.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medspace.ledger.errors import CheckpointError
from medspace.ledger.merkle import HASH_SIZE
from medspace.ledger.note import (
    ALG_COSIGNATURE_V1,
    Note,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    VerifierKey,
    check_key_name,
)

_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")
_MAX_SIZE = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: the log's origin, its size and the RFC 9162 root at that size."""

    origin: str
    size: int
    root: bytes

    def __post_init__(self) -> None:
        if not self.origin or any(c.isspace() for c in self.origin) or "+" in self.origin:
            raise CheckpointError("checkpoint origin must be non-empty without spaces or '+'")
        if not 0 <= self.size <= _MAX_SIZE:
            raise CheckpointError("checkpoint size must be between 0 and 2**63 - 1")
        if len(self.root) != HASH_SIZE:
            raise CheckpointError("checkpoint root must be a 32-byte SHA-256 hash")

    def body(self) -> str:
        """The note text: origin, size and base64 root, one per line."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode('ascii')}\n"

    @classmethod
    def from_body(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body; raises `CheckpointError` when malformed."""
        lines = text.split("\n")
        if len(lines) != 4 or lines[3] != "":
            raise CheckpointError(
                "checkpoint body must be exactly origin, size and root hash lines "
                "(MedSpace checkpoints carry no extension lines)"
            )
        origin, size, root = lines[:3]
        if not _SIZE.fullmatch(size):
            raise CheckpointError("checkpoint size is not a decimal number without leading zeroes")
        try:
            raw = base64.b64decode(root, validate=True)
        except binascii.Error:
            raise CheckpointError("checkpoint root hash is not standard base64") from None
        return cls(origin, int(size), raw)


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A witness's timestamped statement that it saw this checkpoint as the newest
    consistent tree head of the log."""

    name: str
    key_id: bytes
    timestamp: int
    signature: bytes

    def to_note_signature(self) -> NoteSignature:
        """As a note signature (type 0x04 layout)."""
        return NoteSignature(
            self.name, self.key_id, struct.pack(">Q", self.timestamp) + self.signature
        )

    def line(self) -> str:
        """The signature line as it appears under the checkpoint."""
        return self.to_note_signature().line()

    @classmethod
    def from_note_signature(cls, sig: NoteSignature) -> Cosignature:
        """Read a note signature as a cosignature; raises `CheckpointError` on a bad length."""
        if len(sig.signature) != 8 + 64:
            raise CheckpointError("cosignature must be an 8-byte timestamp and a 64-byte signature")
        (timestamp,) = struct.unpack(">Q", sig.signature[:8])
        if timestamp > 2**63 - 1:
            raise CheckpointError("cosignature timestamp exceeds 2**63 - 1")
        return cls(sig.name, sig.key_id, timestamp, sig.signature[8:])


def cosigned_message(checkpoint: Checkpoint, timestamp: int) -> bytes:
    """The bytes a cosignature/v1 signature covers."""
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint.body()}".encode()


@dataclass(frozen=True)
class CosignatureVerifier(VerifierKey):
    """A trusted witness key (type 0x04)."""

    ALG: ClassVar[int] = ALG_COSIGNATURE_V1

    def matches(self, sig: NoteSignature) -> bool:
        """Whether a signature line claims to be from this witness (name and key ID)."""
        return sig.name == self.name and sig.key_id == self.key_id

    def verify(self, checkpoint: Checkpoint, cosignature: Cosignature) -> None:
        """Raise `CheckpointError` unless `cosignature` is this witness's valid signature."""
        if cosignature.name != self.name or cosignature.key_id != self.key_id:
            raise CheckpointError(f"cosignature is not from witness {self.name}")
        try:
            self.public_key.verify(
                cosignature.signature, cosigned_message(checkpoint, cosignature.timestamp)
            )
        except InvalidSignature:
            raise CheckpointError(
                f"cosignature by {self.name} on the checkpoint at size {checkpoint.size} does "
                "not verify"
            ) from None


class Cosigner:
    """Makes cosignature/v1 signatures with a witness's Ed25519 key."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        check_key_name(name)
        self.name = name
        self._key = private_key

    @property
    def verifier(self) -> CosignatureVerifier:
        """The matching verifier, to register with logs and auditors."""
        return CosignatureVerifier(self.name, self._key.public_key())

    def cosign(self, checkpoint: Checkpoint, timestamp: int | None = None) -> Cosignature:
        """Cosign `checkpoint` at `timestamp` (default: now, in POSIX seconds)."""
        moment = int(time.time()) if timestamp is None else timestamp
        signature = self._key.sign(cosigned_message(checkpoint, moment))
        return Cosignature(self.name, self.verifier.key_id, moment, signature)


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint as a signed note: the log's signature plus any witness cosignatures."""

    checkpoint: Checkpoint
    note: Note

    @classmethod
    def from_text(cls, text: str | bytes) -> SignedCheckpoint:
        """Parse a signed checkpoint note (signatures are checked by `verify`)."""
        note = Note.from_text(text)
        return cls(Checkpoint.from_body(note.text), note)

    def to_text(self) -> str:
        """The signed note text."""
        return self.note.to_text()

    def verify(self, log: NoteVerifier) -> None:
        """Raise `CheckpointError` unless the log's own key signed this checkpoint and the
        key name matches the origin."""
        if log.name != self.checkpoint.origin:
            raise CheckpointError("the log key's name does not match the checkpoint origin")
        log.verify(self.note)

    def cosignatures(self, witness: CosignatureVerifier) -> list[Cosignature]:
        """The signature lines that claim to come from `witness`, read as cosignatures."""
        return [
            Cosignature.from_note_signature(sig)
            for sig in self.note.signatures
            if witness.matches(sig)
        ]

    def with_cosignatures(self, cosignatures: Iterable[Cosignature]) -> SignedCheckpoint:
        """This checkpoint with further cosignature lines appended (duplicates dropped)."""
        lines = list(self.note.signatures)
        for cosignature in cosignatures:
            sig = cosignature.to_note_signature()
            if sig not in lines:
                lines.append(sig)
        return SignedCheckpoint(self.checkpoint, Note(self.note.text, tuple(lines)))


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> SignedCheckpoint:
    """Sign `checkpoint` with the log key (whose name must be the origin)."""
    if signer.name != checkpoint.origin:
        raise CheckpointError("the log key's name must be the checkpoint origin")
    body = checkpoint.body()
    return SignedCheckpoint(checkpoint, Note(body, (signer.sign(body),)))
