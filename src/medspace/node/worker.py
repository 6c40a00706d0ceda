"""What a node does with the hub's requests: re-check and run tasks, cosign checkpoints.

The node never trusts the hub's say-so. For a task it checks the researcher's token with
the hub's pinned token key, keeps its own copy of each project's terms (a hub that later
shows other terms is refused), re-decides `task.run` against its own standing policy and
the contract hash it computes itself, applies the minimum cell size, and signs its own
ledger entries. For a checkpoint its witness checks the log signature and the consistency
proof from the last checkpoint it cosigned.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medspace.errors import MedSpaceError
from medspace.identity import AuthError, parse_public_key, verify_delegation
from medspace.identity.errors import UserKeyError
from medspace.identity.stewards import steward_ring, verify_steward_entry
from medspace.ledger import (
    CheckpointError,
    Cosigner,
    Entry,
    EntrySigner,
    EntryType,
    ForkDetected,
    NoteVerifier,
    RollbackRefused,
    SignedCheckpoint,
    Witness,
    WitnessStateMismatch,
    canonical_bytes,
    utc_timestamp,
)
from medspace.node.cohort import parse_cohort
from medspace.node.directory import Node
from medspace.node.standing import HubPin, load_consent, load_node_policy
from medspace.policy import (
    Context,
    DecisionRecord,
    MemoryRecorder,
    ProjectBook,
    ProjectError,
    ProjectState,
    Purpose,
    TaskRequest,
    UnknownProjectError,
    Verdict,
    contract_hash,
    decide,
)

WITNESS_FILE = "witness.json"
NETWORK_DB = "network.db"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class NodeWorker:
    """One node's request handlers (thread-safe; the service calls them in threads)."""

    def __init__(self, node: Node, pin: HubPin) -> None:
        self.node = node
        self.name = node.name
        self.pin = pin
        self.identity_key: Ed25519PrivateKey = node.identity_private_key()
        self.policy = load_node_policy(node.directory, node.name)
        self._signer = EntrySigner(self.identity_key)
        self._hub_token_key = parse_public_key(pin.hub_key)
        self._engine = sa.create_engine(f"sqlite:///{Path(node.directory) / NETWORK_DB}")
        self._book = ProjectBook(self._engine)
        self.witness = Witness(
            Cosigner(node.name, self.identity_key),
            [NoteVerifier.from_vkey(pin.log_key)],
            Path(node.directory) / WITNESS_FILE,
        )
        self._lock = threading.Lock()
        #: Counts the project states this node has taken into its book (any change, a
        #: revocation pushed by the hub included); caches of accepted states key on it.
        self.generation = 0

    def close(self) -> None:
        """Release the node's local databases."""
        self._engine.dispose()

    # -- tasks ----------------------------------------------------------------------------

    def handle_task(self, body: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
        """Check and run one task; returns the reply (status ok, refused or error) with
        the node's signed ledger entries."""
        now = now or datetime.now(UTC)
        task_id = body.get("task_id")
        task_id = task_id if isinstance(task_id, str) and _UUID.fullmatch(task_id) else None
        try:
            user = verify_delegation(
                self._hub_token_key,
                str(body.get("token", "")),
                audience="task",
                binding=task_id or "",
                now=now,
            ).user
            task = TaskRequest.parse(body.get("task"))
            received = ProjectState.parse(body.get("project"))
            state = self._own_copy(received, now)
        except (AuthError, ProjectError) as error:
            return self._refusal(task_id, None, "refused", str(error), "task.run/unverified")
        recorder = MemoryRecorder()
        decision = decide(
            user,
            "task.run",
            state,
            Context(now=now, recorder=recorder, task=task, node_policy=self.policy),
        )
        entries = [self._entry(r) for r in recorder.records]
        if not decision.allow:
            return {
                "type": "reply",
                "status": "refused",
                "reason": decision.reason,
                "entries": entries,
            }
        k = int(decision.obligation("min-cell-size") or "0")
        try:
            opted_out = decision.obligation("exclude-opted-out")
            excluded = (
                load_consent(self.node.directory).excluded(Purpose(opted_out))
                if opted_out
                else frozenset()
            )
            cohort = parse_cohort(state.project.cohort)
            count = self.node.store.count_patients(
                condition_prefixes=cohort.prefixes,
                code_system=cohort.code_system,
                exclude_pseudonyms=excluded,
            )
        except MedSpaceError as error:
            return {
                "type": "reply",
                "status": "error",
                "reason": str(error),
                "entries": entries,
            }
        suppressed = count < k
        shown = None if suppressed else count
        result = {"project": task.project_id, "node": self.name, "count": shown, "k": k}
        digest = hashlib.sha256(canonical_bytes(result)).hexdigest()
        details: dict[str, Any] = {
            "statistic": "count",
            "status": "completed",
            "suppressed_cells": 1 if suppressed else 0,
        }
        if task_id is not None:
            details["task"] = task_id
        result_entry = Entry(
            type=EntryType.RESULT,
            actor=self.name,
            time=utc_timestamp(now),
            node=self.name,
            project=task.project_id,
            artefacts={"result": f"sha256:{digest}", "agreement": f"sha256:{task.contract_hash}"},
            details=details,
        )
        entries.append(self._encode(result_entry))
        return {
            "type": "reply",
            "status": "ok",
            "count": shown,
            "min_cell_size": k,
            "entries": entries,
        }

    def handle_project(self, body: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
        """Take a project state the hub pushes when a project is revoked or a node's
        approval withdrawn, so the node knows before any task (and never reopens it).
        The same checks as for a task's project state apply."""
        try:
            received = ProjectState.parse(body.get("project"))
            self._own_copy(received, now or datetime.now(UTC))
        except ProjectError as error:
            return {"type": "reply", "status": "refused", "reason": str(error)}
        return {"type": "reply", "status": "ok"}

    def _own_copy(self, received: ProjectState, now: datetime) -> ProjectState:
        """The node's copy of the project: the terms first seen are kept; verdicts and
        revocations follow the hub, but only so far as the hub cannot forge them:

        - this node's approval must be the entry a steward pinned here signed, for this
          node and project, over the contract hash of the node's own copy of the terms
          (`verify_steward_entry`; a forged, replayed or stripped approval is refused);
        - a revocation, or this node's denial or withdrawal, once seen, stays: a hub
          that later shows the project open again is refused (closing needs no
          signature check, since it only stops work).

        Raises `ProjectError` (the task is refused and the node ledgers the refusal)."""
        with self._lock:
            try:
                old: ProjectState | None = self._book.get(received.project.id)
            except UnknownProjectError:
                old = None
            terms = received.project if old is None else old.project
            if received.project != terms:
                raise ProjectError("a project's terms never change; file a new project instead")
            if old is not None:
                _refuse_reopening(old, received, self.name)
            verdict = received.verdict(self.name)
            if verdict is not None and verdict.verdict is Verdict.APPROVED:
                try:
                    verify_steward_entry(
                        verdict.entry,
                        steward_ring(Path(self.node.directory)),
                        kind=EntryType.APPROVAL,
                        node=self.name,
                        project=terms.id,
                        contract_hash=contract_hash(terms, self.name),
                    )
                except UserKeyError as error:
                    raise ProjectError(str(error)) from None
            self.generation += 1
            if old is None:
                return self._book.file(received, now=now)
            return self._book.update(received.project.id, lambda _old: received, now=now)

    def _entry(self, record: DecisionRecord) -> str:
        return self._encode(self._decision(record))

    def _decision(self, record: DecisionRecord) -> Entry:
        """The node's ledger entry for one of its decisions (unsigned)."""
        fields = record.ledger_fields()
        fields["actor"] = self.name
        fields["node"] = self.name
        details = dict(fields["details"])
        details["role"] = "node"
        fields["details"] = details
        return Entry(**fields)

    def _encode(self, entry: Entry) -> str:
        return base64.b64encode(self._signer.sign(entry).body).decode("ascii")

    def _encode_batch(self, entries: list[Entry]) -> list[str]:
        """`entries` signed as one batch (one signature for the hub to check)."""
        signed = self._signer.sign_batch(entries)
        return [base64.b64encode(s.body).decode("ascii") for s in signed]

    def _refusal(
        self, task_id: str | None, project: str | None, status: str, reason: str, code: str
    ) -> dict[str, Any]:
        details: dict[str, Any] = {"decision": "deny", "reason": code, "role": "node"}
        if task_id is not None:
            details["task"] = task_id
        entry = Entry(
            type=EntryType.COMPUTE,
            actor=self.name,
            time=utc_timestamp(),
            node=self.name,
            details=details,
        )
        return {
            "type": "reply",
            "status": status,
            "reason": reason,
            "entries": [self._encode(entry)],
        }

    # -- witness --------------------------------------------------------------------------

    def handle_cosign(self, body: dict[str, Any]) -> dict[str, Any]:
        """Cosign a checkpoint if it extends what this witness cosigned before."""
        try:
            signed = SignedCheckpoint.from_text(str(body.get("checkpoint", "")))
            old_size = body.get("old_size")
            proof_text = body.get("proof")
            if type(old_size) is not int or not isinstance(proof_text, list):
                raise CheckpointError("cosign request needs old_size and a proof list")
            proof = [base64.b64decode(p, validate=True) for p in proof_text]
            cosignature = self.witness.cosign(signed, old_size, proof)
        except WitnessStateMismatch as mismatch:
            return {
                "type": "reply",
                "status": "state-mismatch",
                "witness_size": mismatch.witness_size,
            }
        except (ForkDetected, RollbackRefused) as fork:
            return {"type": "reply", "status": "fork", "reason": str(fork)}
        except (CheckpointError, binascii.Error, TypeError, ValueError) as error:
            return {"type": "reply", "status": "error", "reason": str(error)[:300]}
        return {"type": "reply", "status": "ok", "cosignature": cosignature.line()}


def _refuse_reopening(old: ProjectState, received: ProjectState, node: str) -> None:
    """Raise `ProjectError` if `received` undoes a revocation, or this node's denial or
    withdrawal, that the node has already seen (the lifecycle makes both final)."""
    if old.revocation is not None and received.revocation is None:
        raise ProjectError(
            f"the hub shows project {old.project.id} as not revoked, but this node saw its "
            "revocation; the task is refused"
        )
    before, after = old.verdict(node), received.verdict(node)
    closed = (Verdict.DENIED, Verdict.WITHDRAWN)
    reopened = after is None or before is None or after.verdict is not before.verdict
    if before is not None and before.verdict in closed and reopened:
        raise ProjectError(
            f"the hub shows this node's {before.verdict.value} of project "
            f"{old.project.id} undone; decisions are final, so the task is refused"
        )
