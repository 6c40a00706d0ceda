"""Batch signatures: one Ed25519 signature by one actor over many entries.

Verifying an Ed25519 signature costs about 175 µs on the machines we measured, so a log
that checks one signature per entry tops out near 5,700 entries per core and second. An
actor that records many entries at once signs them as a *batch* instead: it builds an
RFC 9162 Merkle tree whose leaves are the entries' canonical bytes (leaf hash
SHA-256(0x00 || canonical entry), interior SHA-256(0x01 || left || right)) and signs

    "medspace/ledger-batch/v1\\n" || u64be(size) || root

once. Every member of the batch is logged with a `BatchRef` (its position, the batch size
and the root, which is the batch's id) and the batch signature, so each logged entry stays
attributable to its actor's key: given the other members (or an RFC 9162 inclusion proof
of its leaf in the batch tree) anyone can check it. The context string keeps a batch
signature from meaning anything for a single entry and the other way round.

A batch has at least two members; a single entry is signed on its own (`EntrySigner.sign`),
exactly as before batches existed.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from medspace.ledger.errors import EntryError
from medspace.ledger.merkle import EMPTY_ROOT, HASH_SIZE, MemoryTree, inclusion_proof

BATCH_SIGNING_CONTEXT = b"medspace/ledger-batch/v1\n"
"""Prefix of every batch signature's message."""

MAX_BATCH_ENTRIES = 4096
"""Most entries one batch signature may cover (keeps membership proofs and re-checks small)."""

_HEX_ROOT = re.compile(r"[0-9a-f]{64}")
_sha256 = hashlib.sha256


@dataclass(frozen=True, slots=True)
class BatchRef:
    """Where a logged entry sits in the batch its actor signed: `index` of `size`
    members of the batch whose RFC 9162 root (the batch id) is `root`."""

    index: int
    size: int
    root: bytes

    def __post_init__(self) -> None:
        if type(self.size) is not int or not 2 <= self.size <= MAX_BATCH_ENTRIES:
            raise EntryError(f"a signed batch holds 2 to {MAX_BATCH_ENTRIES} entries")
        if type(self.index) is not int or not 0 <= self.index < self.size:
            raise EntryError("an entry's batch position must lie inside its batch")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise EntryError("a batch root must be 32 bytes (SHA-256)")

    def to_json(self) -> dict[str, object]:
        """The `batch` member of a signed entry's body."""
        return {"index": self.index, "root": self.root.hex(), "size": self.size}

    @classmethod
    def from_json(cls, value: object) -> BatchRef:
        """Parse a body's `batch` member; raises `EntryError`."""
        if not isinstance(value, dict) or sorted(value) != ["index", "root", "size"]:
            raise EntryError("an entry's batch must be an object with exactly: index, root, size")
        root = value["root"]
        if not isinstance(root, str) or not _HEX_ROOT.fullmatch(root):
            raise EntryError("a batch root must be 64 lowercase hex digits")
        return cls(value["index"], value["size"], bytes.fromhex(root))

    def encoded(self) -> bytes:
        """Canonical JSON of `to_json()` (fixed member order, ASCII only)."""
        return b'{"index":%d,"root":"%s","size":%d}' % (
            self.index,
            self.root.hex().encode("ascii"),
            self.size,
        )


def batch_message(size: int, root: bytes) -> bytes:
    """The exact bytes a batch signature covers."""
    return BATCH_SIGNING_CONTEXT + struct.pack(">Q", size) + root


def member_hash(canonical_entry: bytes) -> bytes:
    """Leaf hash of one entry in its batch tree: SHA-256(0x00 || canonical entry)."""
    return _sha256(b"\x00" + canonical_entry).digest()


def batch_root(canonical_entries: Iterable[bytes]) -> bytes:
    """RFC 9162 root of a batch tree over the members' canonical bytes, in order.

    Computed level by level, pairing neighbours and carrying an odd last node up
    unchanged, which yields exactly RFC 9162's MTH (its split at the largest power of two
    below n puts every unpaired node at the right edge)."""
    sha = _sha256
    level = [sha(b"\x00" + data).digest() for data in canonical_entries]
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        paired = [
            sha(b"\x01" + a + b).digest() for a, b in zip(level[::2], level[1::2], strict=False)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def batch_proof(canonical_entries: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 9162 inclusion proof of member `index` in its batch tree (`merkle.verify_inclusion`
    with the member's `member_hash` and the batch root checks it)."""
    tree = MemoryTree(member_hash(data) for data in canonical_entries)
    return inclusion_proof(index, tree.size, tree)
