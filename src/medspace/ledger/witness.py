"""Witnesses: each node cosigns the log's checkpoints, but only ones consistent with the
newest checkpoint it cosigned before. The latest cosigned checkpoint per log is kept in a
small state file, so a log that rewrites or forks its history is caught, across restarts.

A checkpoint is final when a quorum of distinct known witnesses (default: a majority) has
cosigned it. With honest witnesses two conflicting histories can never both be final: any
two majorities share a witness, and a witness never cosigns both.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from medspace.ledger.checkpoint import (
    Checkpoint,
    Cosignature,
    CosignatureVerifier,
    Cosigner,
    SignedCheckpoint,
)
from medspace.ledger.errors import (
    CheckpointError,
    ConsistencyError,
    ForkDetected,
    LogStateError,
    NotFinal,
    RollbackRefused,
    WitnessStateMismatch,
)
from medspace.ledger.merkle import EMPTY_ROOT, verify_consistency
from medspace.ledger.note import NoteVerifier

_STATE_VERSION = 1


class Witness:
    """A node's witness: verifies, checks consistency, cosigns, remembers.

    `logs` are the log keys it trusts, one per origin. `state_path` is its state file
    (created on first cosignature; written atomically before a cosignature is returned).
    """

    def __init__(self, cosigner: Cosigner, logs: Iterable[NoteVerifier], state_path: Path) -> None:
        self._cosigner = cosigner
        self._logs = {log.name: log for log in logs}
        if not self._logs:
            raise CheckpointError("a witness needs at least one trusted log key")
        self._path = Path(state_path)
        self._lock = threading.Lock()
        self._state = self._load()

    @property
    def name(self) -> str:
        """The witness's key name."""
        return self._cosigner.name

    @property
    def verifier(self) -> CosignatureVerifier:
        """The witness's public cosignature key."""
        return self._cosigner.verifier

    def latest(self, origin: str) -> SignedCheckpoint | None:
        """The newest checkpoint of `origin` this witness cosigned, if any."""
        return self._state.get(origin)

    def latest_size(self, origin: str) -> int:
        """Size of the newest checkpoint of `origin` cosigned so far (0 when none)."""
        latest = self._state.get(origin)
        return 0 if latest is None else latest.checkpoint.size

    def cosign(
        self,
        signed: SignedCheckpoint,
        old_size: int,
        proof: Sequence[bytes],
        *,
        timestamp: int | None = None,
    ) -> Cosignature:
        """Cosign `signed` if it is the log's and extends what this witness saw before.

        `proof` is the consistency proof from `old_size` (which must be this witness's
        latest cosigned size) to the checkpoint's size. Raises `CheckpointError` (unknown
        log, bad log signature), `WitnessStateMismatch` (wrong old size: retry with a proof
        from `witness_size`), `RollbackRefused` (older than already cosigned) or
        `ForkDetected` (same size with another root, or an inconsistent proof).
        """
        checkpoint = signed.checkpoint
        log = self._logs.get(checkpoint.origin)
        if log is None:
            raise CheckpointError(
                "checkpoint is from a log this witness does not know; add the log's key to "
                "the witness configuration"
            )
        signed.verify(log)
        with self._lock:
            previous = self._state.get(checkpoint.origin)
            known = previous.checkpoint if previous else Checkpoint(log.name, 0, EMPTY_ROOT)
            if checkpoint.size < known.size:
                raise RollbackRefused(
                    f"checkpoint at size {checkpoint.size} is older than the one at size "
                    f"{known.size} this witness already cosigned; send the newest checkpoint"
                )
            if old_size != known.size:
                raise WitnessStateMismatch(
                    f"consistency proof starts at size {old_size} but this witness last "
                    f"cosigned size {known.size}; send a proof from size {known.size}",
                    witness_size=known.size,
                )
            try:
                verify_consistency(known.size, checkpoint.size, known.root, checkpoint.root, proof)
            except ConsistencyError as exc:
                raise ForkDetected(
                    f"fork detected: the checkpoint at size {checkpoint.size} is not "
                    f"consistent with the checkpoint at size {known.size} this witness "
                    f"cosigned ({exc}); keep both checkpoints as evidence and alert the "
                    "stewards",
                    old_size=known.size,
                    new_size=checkpoint.size,
                ) from None
            cosignature = self._cosigner.cosign(checkpoint, timestamp)
            if previous is None or checkpoint.size > known.size:
                self._state[checkpoint.origin] = SignedCheckpoint(checkpoint, signed.note)
                self._save()
            return cosignature

    def _load(self) -> dict[str, SignedCheckpoint]:
        if not self._path.exists():
            return {}
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
            if data.get("version") != _STATE_VERSION:
                raise ValueError("version")
            state = {
                origin: SignedCheckpoint.from_text(text) for origin, text in data["logs"].items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError, CheckpointError):
            raise LogStateError(
                f"witness state file {self._path} is unreadable; restore it from backup "
                "(starting afresh would let a forked log pass)"
            ) from None
        for origin, signed in state.items():
            log = self._logs.get(origin)
            if log is not None:
                signed.verify(log)
        return state

    def _save(self) -> None:
        data = {
            "version": _STATE_VERSION,
            "logs": {origin: signed.to_text() for origin, signed in self._state.items()},
        }
        self._path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._path.with_name(self._path.name + ".tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self._path)


class Quorum:
    """When a checkpoint is final: at least `threshold` distinct known witnesses have
    cosigned it validly (default threshold: a majority of the witnesses)."""

    def __init__(
        self, witnesses: Sequence[CosignatureVerifier], threshold: int | None = None
    ) -> None:
        names = [w.name for w in witnesses]
        if not witnesses:
            raise CheckpointError("a quorum needs at least one witness")
        if len(set(names)) != len(names):
            raise CheckpointError("a quorum lists each witness once")
        self.witnesses = tuple(witnesses)
        self.threshold = len(witnesses) // 2 + 1 if threshold is None else threshold
        if not 1 <= self.threshold <= len(witnesses):
            raise CheckpointError(f"quorum threshold must be between 1 and {len(witnesses)}")

    def tally(self, signed: SignedCheckpoint) -> tuple[list[str], list[str]]:
        """Names of known witnesses with a valid cosignature, and of those whose
        cosignature line fails to verify."""
        valid: list[str] = []
        invalid: list[str] = []
        for witness in self.witnesses:
            lines = signed.cosignatures(witness)
            if not lines:
                continue
            try:
                for cosignature in lines:
                    witness.verify(signed.checkpoint, cosignature)
            except CheckpointError:
                invalid.append(witness.name)
            else:
                valid.append(witness.name)
        return valid, invalid

    def is_final(self, signed: SignedCheckpoint) -> bool:
        """Whether the checkpoint has its quorum and no failing cosignature."""
        valid, invalid = self.tally(signed)
        return not invalid and len(valid) >= self.threshold

    def require_final(self, signed: SignedCheckpoint) -> None:
        """Raise `NotFinal` unless the checkpoint is final."""
        valid, invalid = self.tally(signed)
        if invalid:
            raise NotFinal(
                f"checkpoint at size {signed.checkpoint.size} carries cosignatures that do "
                f"not verify (from {', '.join(invalid)}); treat it as tampered"
            )
        if len(valid) < self.threshold:
            raise NotFinal(
                f"checkpoint at size {signed.checkpoint.size} has {len(valid)} of the "
                f"{self.threshold} witness cosignatures it needs; wait for more witnesses"
            )


class ProofSource(Protocol):
    """Serves consistency proofs (a `Log`, or a hub client)."""

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """The consistency proof between two sizes."""
        ...


class WitnessClient(Protocol):
    """A witness reached in process or over the network."""

    def cosign(
        self, signed: SignedCheckpoint, old_size: int, proof: Sequence[bytes]
    ) -> Cosignature:
        """See `Witness.cosign`."""
        ...


def request_cosignature(
    source: ProofSource, signed: SignedCheckpoint, witness: WitnessClient, old_size: int
) -> Cosignature:
    """Ask `witness` to cosign, sending a proof from `old_size` (the size the log believes
    the witness is at); if the witness answers with its real size, retry once from there."""
    size = signed.checkpoint.size
    proof = source.consistency_proof(old_size, size) if old_size <= size else []
    try:
        return witness.cosign(signed, old_size, proof)
    except WitnessStateMismatch as exc:
        if exc.witness_size > size:
            raise
        proof = source.consistency_proof(exc.witness_size, size)
        return witness.cosign(signed, exc.witness_size, proof)
