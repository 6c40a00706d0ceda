"""The lookup's ledger entries, signed by the node that acted.

What they hold (and what they never hold): the request id, the purpose, counts and
status codes, and SHA-256 digests of the justification and of each sealed answer. No
patient identity, pseudonym, linkage token or summary appears, so the ledger shows who
looked, why (as a digest the node's review can check), how many records matched and
that an answer was sent, and nothing about whom.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medspace.ledger import Entry, EntrySigner, EntryType, utc_timestamp
from medspace.policy import DecisionRecord


def digest(data: bytes) -> str:
    """`sha256:<hex>` of `data`, the form artefacts take in the ledger."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


class NodeLedger:
    """Signs one node's lookup entries with its identity key."""

    def __init__(self, node: str, key: Ed25519PrivateKey) -> None:
        self.node = node
        self._signer = EntrySigner(key)

    def draft(
        self,
        kind: EntryType,
        now: datetime,
        *,
        artefacts: Mapping[str, str] | None = None,
        **details: Any,
    ) -> Entry:
        """An unsigned entry by this node (sign a reply's drafts together, `sign_all`)."""
        return Entry(
            type=kind,
            actor=self.node,
            time=utc_timestamp(now),
            node=self.node,
            artefacts=dict(artefacts or {}),
            details={"role": "node", **details},
        )

    def draft_decision(self, record: DecisionRecord) -> Entry:
        """A policy decision this node took, as an unsigned entry by the node."""
        fields = record.ledger_fields()
        fields["actor"] = self.node
        fields["node"] = self.node
        details = dict(fields["details"])
        details["role"] = "node"
        fields["details"] = details
        return Entry(**fields)

    def sign_all(self, entries: Sequence[Entry]) -> list[bytes]:
        """The signed bodies of `entries`, in order, under one batch signature (see
        `EntrySigner.sign_batch`): the hub checks one signature per reply, and each entry
        still verifies alone with its batch proof. Submit them together, in this order."""
        return [signed.body for signed in self._signer.sign_batch(entries)]

    def sign(
        self,
        kind: EntryType,
        now: datetime,
        *,
        artefacts: Mapping[str, str] | None = None,
        **details: Any,
    ) -> bytes:
        """One signed entry's body (what `HubCore.append_node_entries` takes)."""
        return self._signer.sign(self.draft(kind, now, artefacts=artefacts, **details)).body


def b64(bodies: list[bytes]) -> list[str]:
    """Entry bodies as base64 text for JSON messages."""
    return [base64.b64encode(b).decode("ascii") for b in bodies]
