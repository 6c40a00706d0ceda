"""Ledger entries: what happened, who did it, where, for which project, on which artefacts.

An entry never holds patient data. The rule, enforced by `Entry` itself:

- every field is in a fixed schema: `type` (a closed set), `actor`, `node`, `project`,
  `artefacts`, `time`, `details`; unknown fields are refused;
- `actor`, `node` and `project` are registered names of people, hospitals and projects
  (the actor must also own the signing key, see `keys.verify_entry`);
- artefacts (a query, an agreement, a result, a break-glass justification, a model) appear
  only as `sha256:<hex>` digests, never as content;
- `details` keys come from the registry `DETAIL_FIELDS`, each with a value kind: short
  codes without spaces (no free text, no five-digit runs, so no phone numbers, record or
  national ID numbers), UUIDs, SHA-256 hex, counts and flags. A new key is added to the
  registry in review, never ad hoc.

This cannot prove that no value is a patient identifier (a code can spell a name); it keeps
free text and number-like identifiers out and makes every field's meaning explicit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from medspace.ledger.batch import MAX_BATCH_ENTRIES, BatchRef, batch_message, batch_root
from medspace.ledger.canonical import MAX_SAFE_INTEGER, canonical_bytes, parse_json
from medspace.ledger.errors import CanonicalError, EntryError, SignatureError

MAX_ENTRY_BYTES = 64 * 1024
"""Upper bound of a signed entry's canonical encoding (the leaf data), in bytes."""

SIGNING_CONTEXT = b"medspace/ledger-entry/v1\n"
"""Prefix of every signed message, so an entry signature means nothing anywhere else."""


class EntryType(StrEnum):
    """The closed set of things the ledger records."""

    REQUEST = "request"
    APPROVAL = "approval"
    DENIAL = "denial"
    REVOCATION = "revocation"
    TASK = "task"
    ACCESS = "access"
    COMPUTE = "compute"
    RESULT = "result"
    EXPORT = "export"
    LOOKUP = "lookup"
    BREAK_GLASS = "break_glass"
    KEY_ROTATION = "key_rotation"
    POLICY = "policy"
    CONSENT = "consent"
    # Emergency lookup (medspace.lookup): a node found the patient (match), sent a sealed
    # summary or "no match" (answer), the asking clinician opened the answers (view), an
    # unusual-use alert fired (alert), a steward reviewed a break-glass event (review).
    MATCH = "match"
    ANSWER = "answer"
    VIEW = "view"
    ALERT = "alert"
    REVIEW = "review"


class DetailKind(StrEnum):
    """How a `details` value is checked."""

    CODE = "code"  # ^[A-Za-z][A-Za-z0-9_.:/-]{0,63}$ with no run of 5+ digits
    CODES = "codes"  # a list of up to 64 codes
    UUID = "uuid"  # canonical lowercase UUID
    SHA256 = "sha256"  # 64 lowercase hex digits
    COUNT = "count"  # integer 0 .. 2**53 - 1
    FLAG = "flag"  # true / false


DETAIL_FIELDS: Mapping[str, DetailKind] = MappingProxyType(
    {
        "purpose": DetailKind.CODE,  # HL7 v3 ActReason code: HRESCH, ETREAT, BTG, ...
        "decision": DetailKind.CODE,  # allow / deny
        "reason": DetailKind.CODE,  # a machine reason code, e.g. policy.expired
        "status": DetailKind.CODE,  # e.g. completed, failed, partial
        "statistic": DetailKind.CODE,  # analytics statistic name
        "method": DetailKind.CODE,  # e.g. fedavg, secagg
        "role": DetailKind.CODE,  # the actor's role
        "nodes": DetailKind.CODES,  # nodes a task went to
        "task": DetailKind.UUID,
        "request": DetailKind.UUID,
        "job": DetailKind.UUID,
        "key_id": DetailKind.SHA256,  # key rotation: the new key
        "previous_key_id": DetailKind.SHA256,  # key rotation: the retired key
        "count": DetailKind.COUNT,  # how many records / cells / results (never an id)
        "round": DetailKind.COUNT,  # federated learning round
        "suppressed_cells": DetailKind.COUNT,
        "epsilon_micros": DetailKind.COUNT,  # differential privacy budget spent, 1e-6 units
        "partial": DetailKind.FLAG,
    }
)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")
_ARTEFACT_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.:/-]{0,63}")
_DIGIT_RUN = re.compile(r"[0-9]{5}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
_KEY_ID = _SHA256_HEX
_MAX_ARTEFACTS = 64
_FIELDS = ("actor", "artefacts", "details", "node", "project", "time", "type")


def utc_timestamp(moment: datetime | None = None) -> str:
    """`moment` (default: now) as an RFC 3339 UTC timestamp with microseconds."""
    moment = datetime.now(UTC) if moment is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_name(value: object, what: str, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise EntryError(
            f"entry {what} must be a registered name (letters, digits, _ . : @ -; at most "
            "128 characters)"
        )


def _check_code(value: object, what: str) -> None:
    if not isinstance(value, str) or not _CODE.fullmatch(value) or _DIGIT_RUN.search(value):
        raise EntryError(
            f"details.{what} must be a code (a letter, then letters, digits, _ . : / -; at "
            "most 64 characters; no run of 5 digits); free text and identifiers do not "
            "belong in the ledger: record their sha256 digest as an artefact"
        )


def _check_detail(key: str, value: object) -> None:
    kind = DETAIL_FIELDS.get(key)
    if kind is None:
        raise EntryError(
            "a details field is not in the ledger schema (allowed: "
            + ", ".join(sorted(DETAIL_FIELDS))
            + "); add new fields to medspace.ledger.entry.DETAIL_FIELDS, in review"
        )
    if kind is DetailKind.CODE:
        _check_code(value, key)
    elif kind is DetailKind.CODES:
        if not isinstance(value, list | tuple) or len(value) > 64:
            raise EntryError(f"details.{key} must be a list of at most 64 codes")
        for item in value:
            _check_code(item, key)
    elif kind is DetailKind.UUID:
        if not isinstance(value, str) or not _UUID.fullmatch(value):
            raise EntryError(f"details.{key} must be a lowercase canonical UUID")
    elif kind is DetailKind.SHA256:
        if not isinstance(value, str) or not _SHA256_HEX.fullmatch(value):
            raise EntryError(f"details.{key} must be 64 lowercase hex digits")
    elif kind is DetailKind.COUNT:
        if type(value) is not int or not 0 <= value <= MAX_SAFE_INTEGER:
            raise EntryError(f"details.{key} must be a whole number from 0 to 2**53 - 1")
    elif type(value) is not bool:
        raise EntryError(f"details.{key} must be true or false")


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger event. Validated on construction; raises `EntryError` on any schema break."""

    type: EntryType
    actor: str
    time: str
    node: str | None = None
    project: str | None = None
    artefacts: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    _canonical: bytes = field(default=b"", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "type", EntryType(self.type))
        except ValueError:
            raise EntryError(
                "entry type is not one of: " + ", ".join(t.value for t in EntryType)
            ) from None
        _check_name(self.actor, "actor")
        _check_name(self.node, "node", optional=True)
        _check_name(self.project, "project", optional=True)
        if not isinstance(self.time, str) or not _TIME.fullmatch(self.time):
            raise EntryError("entry time must be RFC 3339 UTC, e.g. 2025-01-31T08:00:00.000000Z")
        try:
            datetime.fromisoformat(self.time)
        except ValueError:
            raise EntryError("entry time is not a real date and time") from None
        if not isinstance(self.artefacts, Mapping) or len(self.artefacts) > _MAX_ARTEFACTS:
            raise EntryError(f"entry artefacts must be a mapping of at most {_MAX_ARTEFACTS}")
        for name, digest in self.artefacts.items():
            if not isinstance(name, str) or not _ARTEFACT_NAME.fullmatch(name):
                raise EntryError("artefact names are lowercase words (a-z, 0-9, _ . -)")
            if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
                raise EntryError("artefact digests must be 'sha256:' and 64 lowercase hex digits")
        if not isinstance(self.details, Mapping):
            raise EntryError("entry details must be a mapping")
        for key, value in self.details.items():
            if not isinstance(key, str):
                raise EntryError("details keys must be strings")
            _check_detail(key, value)
        object.__setattr__(self, "artefacts", MappingProxyType(dict(self.artefacts)))
        details = {k: list(v) if isinstance(v, tuple) else v for k, v in self.details.items()}
        object.__setattr__(self, "details", MappingProxyType(details))
        object.__setattr__(self, "_canonical", canonical_bytes(self.to_json()))

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON object; every field present (absent ones as null / {})."""
        return {
            "actor": self.actor,
            "artefacts": dict(self.artefacts),
            "details": {k: list(v) if isinstance(v, list) else v for k, v in self.details.items()},
            "node": self.node,
            "project": self.project,
            "time": self.time,
            "type": self.type.value,
        }

    @classmethod
    def from_json(cls, value: object) -> Entry:
        """Build an entry from its JSON object; raises `EntryError` on unknown or missing
        fields or any schema break."""
        if not isinstance(value, dict) or tuple(sorted(value)) != _FIELDS:
            raise EntryError("entry must be an object with exactly: " + ", ".join(_FIELDS))
        return cls(
            type=value["type"],
            actor=value["actor"],
            time=value["time"],
            node=value["node"],
            project=value["project"],
            artefacts=value["artefacts"],
            details=value["details"],
        )

    def canonical(self) -> bytes:
        """RFC 8785 bytes of `to_json()`: what the actor signs (after `SIGNING_CONTEXT`)."""
        return self._canonical


@dataclass(frozen=True)
class SignedEntry:
    """An entry with its actor's Ed25519 signature.

    Signed alone (`batch` is None), the signature covers SIGNING_CONTEXT || canonical entry.
    Signed as a member of a batch (`batch.BatchRef`: position, size, root), it covers the
    batch message, and the entry is bound to it by the batch tree (`keys.verify_entry`).
    `key_id` is the hex SHA-256 of the signer's raw public key (`keys.entry_key_id`).
    Its `body` (canonical JSON of batch, entry, key and signature) is the leaf data of the log.
    """

    entry: Entry
    key_id: str
    signature: bytes
    batch: BatchRef | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key_id, str) or not _KEY_ID.fullmatch(self.key_id):
            raise EntryError("entry key id must be 64 lowercase hex digits")
        if not isinstance(self.signature, bytes) or len(self.signature) != 64:
            raise EntryError("entry signature must be 64 bytes (Ed25519)")

    @property
    def signed_message(self) -> bytes:
        """The exact bytes the signature of an entry signed alone covers.

        Raises `SignatureError` for a batch member: its signature covers the batch root,
        which binds the entry only together with its batch proof, so checking the
        signature alone would prove nothing about the entry (use `keys.verify_entry`)."""
        if self.batch is not None:
            raise SignatureError(
                "entry was signed in a batch: its signature alone does not cover it; check "
                "it with verify_entry and its batch proof"
            )
        return SIGNING_CONTEXT + self.entry.canonical()

    @cached_property
    def body(self) -> bytes:
        """Canonical JSON {"batch"?, "entry", "key", "sig"}; at most MAX_ENTRY_BYTES (checked)."""
        # Canonical by construction: keys in order batch < entry < key < sig, and the batch,
        # key id and base64 signature are ASCII that needs no escaping.
        data = b"".join(
            (
                b"{" if self.batch is None else b'{"batch":' + self.batch.encoded() + b",",
                b'"entry":',
                self.entry.canonical(),
                b',"key":"',
                self.key_id.encode("ascii"),
                b'","sig":"',
                base64.b64encode(self.signature),
                b'"}',
            )
        )
        if len(data) > MAX_ENTRY_BYTES:
            raise EntryError(
                f"signed entry is {len(data)} bytes, over the ledger limit of "
                f"{MAX_ENTRY_BYTES}; record large content as an artefact digest"
            )
        return data

    @classmethod
    def from_bytes(cls, body: bytes) -> SignedEntry:
        """Parse a stored or received body; raises `EntryError` unless it is a canonical,
        schema-valid signed entry of at most MAX_ENTRY_BYTES (the signature is not checked
        here: see `keys.verify_entry`)."""
        if len(body) > MAX_ENTRY_BYTES:
            raise EntryError(f"signed entry is over the ledger limit of {MAX_ENTRY_BYTES} bytes")
        try:
            value = parse_json(body)
        except CanonicalError as exc:
            raise EntryError(f"signed entry is not canonical JSON: {exc}") from None
        if not isinstance(value, dict) or sorted(value) not in _BODY_MEMBERS:
            raise EntryError(
                "signed entry must be an object with exactly: entry, key, sig (and batch "
                "when it was signed in a batch)"
            )
        try:
            signature = base64.b64decode(value["sig"], validate=True)
        except (binascii.Error, TypeError):
            raise EntryError("signed entry sig must be standard base64") from None
        batch = BatchRef.from_json(value["batch"]) if "batch" in value else None
        try:
            signed = cls(Entry.from_json(value["entry"]), value["key"], signature, batch)
        except CanonicalError as exc:
            raise EntryError(f"signed entry is not canonical JSON: {exc}") from None
        # The body rebuilt from its parts is canonical by construction: the input must be
        # exactly that (RFC 8785), byte for byte.
        if signed.body != body:
            raise EntryError(
                "signed entry is not canonical JSON: JSON is valid but not canonical "
                "(RFC 8785); re-encode it"
            )
        return signed


_BODY_MEMBERS = (["entry", "key", "sig"], ["batch", "entry", "key", "sig"])


def entry_key_id(public_key: Ed25519PublicKey) -> str:
    """The id of an entry-signing key: hex SHA-256 of its 32 raw bytes."""
    return hashlib.sha256(public_key.public_bytes_raw()).hexdigest()


class EntrySigner:
    """Signs entries with one actor's Ed25519 key (its key id is computed once)."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.key_id = entry_key_id(private_key.public_key())

    def sign(self, entry: Entry) -> SignedEntry:
        """Sign `entry` alone. Raises `EntryError` if the result exceeds the size limit."""
        message = SIGNING_CONTEXT + entry.canonical()
        if len(message) > MAX_ENTRY_BYTES:
            raise EntryError(
                f"entry is {len(message)} bytes, over the ledger limit of {MAX_ENTRY_BYTES}; "
                "record large content as an artefact digest"
            )
        signed = SignedEntry(entry, self.key_id, self._key.sign(message))
        _ = signed.body  # enforce the limit on the full leaf data now, not at append time
        return signed

    def sign_batch(self, entries: Sequence[Entry]) -> list[SignedEntry]:
        """Sign `entries` (all by one actor) with one signature per MAX_BATCH_ENTRIES,
        over the RFC 9162 root of their canonical bytes (see `medspace.ledger.batch`).

        Append the result in order and in one `Log.append` call: a batch is verified
        whole. A lone entry (or a lone remainder) is signed as `sign` would. Raises
        `EntryError` for entries of several actors or one over the size limit.
        """
        if len({entry.actor for entry in entries}) > 1:
            raise EntryError(
                "a batch is signed by one actor; sign each actor's entries with its own key"
            )
        signed: list[SignedEntry] = []
        for start in range(0, len(entries), MAX_BATCH_ENTRIES):
            part = entries[start : start + MAX_BATCH_ENTRIES]
            if len(part) == 1:
                signed.append(self.sign(part[0]))
                continue
            root = batch_root(entry.canonical() for entry in part)
            signature = self._key.sign(batch_message(len(part), root))
            for index, entry in enumerate(part):
                member = SignedEntry(
                    entry, self.key_id, signature, BatchRef(index, len(part), root)
                )
                _ = member.body  # enforce the size limit now, not at append time
                signed.append(member)
        return signed


def sign_entry(entry: Entry, private_key: Ed25519PrivateKey) -> SignedEntry:
    """Sign `entry` as its actor (see `EntrySigner` to sign many)."""
    return EntrySigner(private_key).sign(entry)
