"""C2SP signed notes (c2sp.org/signed-note): text signed by one or more named keys.

A note is its text (ending in a newline), a blank line, then signature lines
`— <key name> base64(key ID || signature)`. The key ID is the first four bytes of
SHA-256(key name || 0x0A || signature type || public key); type 0x01 is plain Ed25519 over
the text, type 0x04 the timestamped witness cosignature (see `checkpoint.py`).
Verifier keys travel as vkeys: `<name>+<hex key ID>+<base64(type || public key)>`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import ClassVar, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from medspace.ledger.errors import CheckpointError

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
MAX_SIGNATURES = 100
MAX_NOTE_BYTES = 1 << 20
_DASH = "\u2014 "


def key_id(name: str, alg: int, public_key: bytes) -> bytes:
    """Key ID per the signed-note spec: SHA-256(name || 0x0A || alg || key)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + public_key).digest()[:4]


def check_key_name(name: str) -> None:
    """Refuse key names the spec forbids: empty, or holding Unicode spaces or '+'."""
    if not name or "+" in name or any(c.isspace() for c in name):
        raise CheckpointError(
            "key name must be non-empty, without spaces or '+' (use a URL-like name such "
            "as medspace.example/ledger)"
        )
    if any(ord(c) < 0x20 for c in name):
        raise CheckpointError("key name must not hold control characters")


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID and the algorithm-specific bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """The signature line, newline-terminated."""
        blob = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{_DASH}{self.name} {blob}\n"

    @classmethod
    def from_line(cls, line: str) -> NoteSignature:
        """Parse one signature line (without its newline); raises `CheckpointError`."""
        if not line.startswith(_DASH):
            raise CheckpointError("note signature line must start with an em dash and a space")
        name, sep, blob = line[len(_DASH) :].partition(" ")
        if not sep or " " in blob:
            raise CheckpointError("note signature line must be '— <name> <base64>'")
        check_key_name(name)
        try:
            raw = base64.b64decode(blob, validate=True)
        except binascii.Error:
            raise CheckpointError("note signature is not standard base64") from None
        if len(raw) < 5:
            raise CheckpointError("note signature is shorter than a key ID and a signature")
        return cls(name, raw[:4], raw[4:])


@dataclass(frozen=True, slots=True)
class Note:
    """A note text and its signatures, in order of appearance."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def to_text(self) -> str:
        """The signed note as transmitted."""
        return self.text + "\n" + "".join(sig.line() for sig in self.signatures)

    @classmethod
    def from_text(cls, note: str | bytes) -> Note:
        """Parse a signed note; raises `CheckpointError` when it breaks the format."""
        if isinstance(note, bytes):
            try:
                note = note.decode("utf-8")
            except UnicodeDecodeError:
                raise CheckpointError("signed note is not valid UTF-8") from None
        if len(note.encode("utf-8")) > MAX_NOTE_BYTES:
            raise CheckpointError(f"signed note is over {MAX_NOTE_BYTES} bytes")
        if any(ord(c) < 0x20 and c != "\n" for c in note):
            raise CheckpointError("signed note holds a control character other than newline")
        split = note.rfind("\n\n")
        if split < 0 or not note.endswith("\n"):
            raise CheckpointError("signed note needs text, a blank line and signature lines")
        text, block = note[: split + 1], note[split + 2 :]
        lines = block[:-1].split("\n") if block else []
        if not lines:
            raise CheckpointError("signed note has no signature")
        if len(lines) > MAX_SIGNATURES:
            raise CheckpointError(f"signed note has more than {MAX_SIGNATURES} signatures")
        return cls(text, tuple(NoteSignature.from_line(line) for line in lines))


@dataclass(frozen=True)
class VerifierKey:
    """A trusted Ed25519 key under a signed-note name; `ALG` is its signature type byte."""

    ALG: ClassVar[int]

    name: str
    public_key: Ed25519PublicKey

    def __post_init__(self) -> None:
        check_key_name(self.name)

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID this key signs under."""
        return key_id(self.name, self.ALG, self.public_key.public_bytes_raw())

    @property
    def vkey(self) -> str:
        """The key as a vkey string, to configure witnesses and auditors."""
        material = base64.b64encode(bytes([self.ALG]) + self.public_key.public_bytes_raw())
        return f"{self.name}+{self.key_id.hex()}+{material.decode('ascii')}"

    @classmethod
    def from_vkey(cls, vkey: str) -> Self:
        """Parse a vkey of this key's type; raises `CheckpointError` when malformed or
        of another type."""
        name, public = parse_vkey(vkey, cls.ALG)
        return cls(name, public)


@dataclass(frozen=True)
class NoteVerifier(VerifierKey):
    """A trusted Ed25519 note key (signature type 0x01): a log's checkpoint key."""

    ALG: ClassVar[int] = ALG_ED25519

    def verify(self, note: Note) -> None:
        """Require a valid signature by this key on `note`.

        Per the spec, signatures by other keys are ignored, a signature by this key that
        fails rejects the note, and a note without one is rejected. Raises `CheckpointError`.
        """
        mine = [s for s in note.signatures if s.name == self.name and s.key_id == self.key_id]
        if not mine:
            raise CheckpointError(f"note carries no signature by {self.name}")
        for sig in mine:
            try:
                self.public_key.verify(sig.signature, note.text.encode("utf-8"))
            except InvalidSignature:
                raise CheckpointError(
                    f"signature by {self.name} does not verify: the note was altered"
                ) from None


def parse_vkey(vkey: str, alg: int) -> tuple[str, Ed25519PublicKey]:
    """Split a vkey `<name>+<hex id>+<base64(alg || key)>` and check its key ID."""
    parts = vkey.split("+", 2)
    if len(parts) != 3 or len(parts[1]) != 8:
        raise CheckpointError("vkey must be '<name>+<8 hex digits>+<base64 key>'")
    name, hex_id, material = parts
    check_key_name(name)
    try:
        expected = bytes.fromhex(hex_id)
        raw = base64.b64decode(material, validate=True)
    except (ValueError, binascii.Error):
        raise CheckpointError("vkey key ID or key material is malformed") from None
    if len(raw) != 33 or raw[0] != alg:
        raise CheckpointError(f"vkey is not an Ed25519 key of signature type {alg:#04x}")
    if key_id(name, alg, raw[1:]) != expected:
        raise CheckpointError("vkey key ID does not match its name and key")
    return name, Ed25519PublicKey.from_public_bytes(raw[1:])


class NoteSigner:
    """Signs notes with an Ed25519 key under a key name (type 0x01): the log's signer."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        check_key_name(name)
        self.name = name
        self._key = private_key

    @property
    def verifier(self) -> NoteVerifier:
        """The matching verifier, to hand to witnesses and auditors."""
        return NoteVerifier(self.name, self._key.public_key())

    def sign(self, text: str) -> NoteSignature:
        """Sign a note text (which must end in a newline)."""
        if not text.endswith("\n"):
            raise CheckpointError("note text must end with a newline")
        return NoteSignature(self.name, self.verifier.key_id, self._key.sign(text.encode("utf-8")))

    @classmethod
    def from_skey(cls, skey: str) -> NoteSigner:
        """Load a signer key in the Go `PRIVATE+KEY+<name>+<hex id>+<base64>` format."""
        prefix = "PRIVATE+KEY+"
        if not skey.startswith(prefix):
            raise CheckpointError("signer key must start with PRIVATE+KEY+")
        parts = skey[len(prefix) :].split("+", 2)
        if len(parts) != 3:
            raise CheckpointError("signer key must be PRIVATE+KEY+<name>+<hex id>+<base64>")
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except binascii.Error:
            raise CheckpointError("signer key material is not base64") from None
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise CheckpointError("signer key is not an Ed25519 seed of type 0x01")
        signer = cls(parts[0], Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if signer.verifier.key_id.hex() != parts[1]:
            raise CheckpointError("signer key ID does not match its name and key")
        return signer
