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
from collections.abc import Mapping
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

    def sign(
        self,
        kind: EntryType,
        now: datetime,
        *,
        artefacts: Mapping[str, str] | None = None,
        **details: Any,
    ) -> bytes:
        """The signed entry's body (what `HubCore.append_node_entries` takes)."""
        entry = Entry(
            type=kind,
            actor=self.node,
            time=utc_timestamp(now),
            node=self.node,
            artefacts=dict(artefacts or {}),
            details={"role": "node", **details},
        )
        return self._signer.sign(entry).body

    def decision(self, record: DecisionRecord) -> bytes:
        """A policy decision this node took, signed by the node."""
        fields = record.ledger_fields()
        fields["actor"] = self.node
        fields["node"] = self.node
        details = dict(fields["details"])
        details["role"] = "node"
        fields["details"] = details
        return self._signer.sign(Entry(**fields)).body


def b64(bodies: list[bytes]) -> list[str]:
    """Entry bodies as base64 text for JSON messages."""
    return [base64.b64encode(b).decode("ascii") for b in bodies]
