"""What `medspace audit show` and `medspace audit prove` call: listing entries and proving
that one entry is in the log under a (final) checkpoint."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from medspace.ledger.checkpoint import SignedCheckpoint
from medspace.ledger.entry import EntryType
from medspace.ledger.errors import EntryNotFound, ProofError
from medspace.ledger.log import Log, LoggedEntry
from medspace.ledger.merkle import verify_inclusion
from medspace.ledger.note import NoteVerifier
from medspace.ledger.witness import Quorum


def show(
    log: Log,
    *,
    project: str | None = None,
    type: EntryType | str | None = None,
    start: int = 0,
    limit: int | None = 100,
) -> list[LoggedEntry]:
    """Entries in log order, optionally for one project and/or of one type."""
    return list(log.entries(project=project, type=type, start=start, limit=limit))


@dataclass(frozen=True)
class EntryProof:
    """An entry, the checkpoint it is proven under and the RFC 9162 inclusion proof."""

    entry: LoggedEntry
    checkpoint: SignedCheckpoint
    proof: tuple[bytes, ...]
    final: bool

    def verify(self, log_key: NoteVerifier, quorum: Quorum | None = None) -> None:
        """Check the log signature, the inclusion proof and (given a quorum) finality.
        Raises `CheckpointError`, `ProofError` or `NotFinal`."""
        self.checkpoint.verify(log_key)
        cp = self.checkpoint.checkpoint
        verify_inclusion(self.entry.index, cp.size, self.entry.leaf_hash, self.proof, cp.root)
        if quorum is not None:
            quorum.require_final(self.checkpoint)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form for the CLI and the hub API."""
        return {
            "index": self.entry.index,
            "entry": self.entry.signed.entry.to_json(),
            "leaf_hash": self.entry.leaf_hash.hex(),
            "checkpoint": self.checkpoint.to_text(),
            "proof": [base64.b64encode(p).decode("ascii") for p in self.proof],
            "final": self.final,
        }


def prove(log: Log, index: int, quorum: Quorum) -> EntryProof:
    """Prove entry `index` under the newest final checkpoint that covers it, or else under
    the newest checkpoint that does (then `final` is False). Raises `EntryNotFound` when
    the entry does not exist or no checkpoint covers it yet."""
    entry = log.entry(index)
    chosen: SignedCheckpoint | None = None
    final = False
    for size in reversed(log.checkpoint_sizes()):
        if size <= index:
            break
        signed = log.checkpoint_at(size)
        if chosen is None:
            chosen = signed
        if quorum.is_final(signed):
            chosen, final = signed, True
            break
    if chosen is None:
        raise EntryNotFound(
            f"entry {index} is not covered by a checkpoint yet; wait for the next checkpoint"
        )
    proof = log.inclusion_proof(index, chosen.checkpoint.size)
    result = EntryProof(entry, chosen, tuple(proof), final)
    cp = chosen.checkpoint
    try:
        verify_inclusion(index, cp.size, entry.leaf_hash, proof, cp.root)
    except ProofError as error:
        raise ProofError(
            f"{error}; the log's tables are damaged: run `medspace audit verify`"
        ) from None
    return result
