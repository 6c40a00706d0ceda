"""Reading the hub's answer lines at the asking node: each must be what its node signed.

The hub streams one line per node. None of them is taken on the hub's word: an answer
counts only when the node's receipt (`receipt.py`) verifies with the node's identity key
(this node's own key for its own answer; for a peer, the key pinned on first contact,
and on first contact the key is pinned only once something signed with it verified).
Anything else makes the result partial: a line that does not parse, an answer whose
receipt does not verify (shown as "unverified", its content left out), a node the hub
calls missing, and a node this one has pinned that sent no verified answer at all (the
hub may not drop a hospital's answer and call the result complete).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from medspace.errors import MedSpaceError
from medspace.identity.roles import NODE_NAME_PATTERN
from medspace.lookup.errors import RequestRejected, SealError
from medspace.lookup.pins import PeerPins
from medspace.lookup.receipt import Receipt, sealed_digest
from medspace.lookup.request import LookupQuery
from medspace.lookup.seal import Binding, Sealed, open_sealed
from medspace.lookup.summary_fields import summary_ok

UNVERIFIED = "unverified"
"""An answer line whose node's signed receipt does not verify (altered on the way)."""
_STATUSES = frozenset({"ok", "refused", "error", "missing"})


@dataclass(frozen=True, slots=True)
class NodeAnswer:
    """One node's answer, opened: status ok/refused/error/unverified, match/no-match,
    and the summaries (one per matched patient record) when it matched."""

    node: str
    status: str
    answer: str | None = None
    patients: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    seconds: float = 0.0
    first_contact: bool = False  # the node's key came from the hub's registry just now


class AnswerReader:
    """The answer lines of one lookup, checked; then whether the result is complete."""

    def __init__(
        self,
        query: LookupQuery,
        agreement: X25519PrivateKey,
        pins: PeerPins,
        own_key: Ed25519PublicKey,
    ) -> None:
        self._query = query
        self._agreement = agreement
        self._pins = pins
        self._own_key = own_key
        self._missing: set[str] = set()
        self._doubts = 0  # lines that did not parse, and answers that did not verify
        self._hub_partial = False
        self._first_contact: set[str] = set()  # nodes whose key this lookup pinned

    def answer(self, line: object, seconds: float) -> NodeAnswer | None:
        """The answer an "answer" line carries; None for a node the hub calls missing and
        for a line that does not parse (both make the result partial)."""
        if not isinstance(line, dict):
            self._doubts += 1
            return None
        node, status = line.get("node"), line.get("status")
        if not isinstance(node, str) or not NODE_NAME_PATTERN.fullmatch(node):
            self._doubts += 1
            return None
        if status == "missing":
            self._missing.add(node)
            return None
        doubt = self._unverified(line, node, status)
        if doubt is not None:
            self._doubts += 1
            return NodeAnswer(node, UNVERIFIED, reason=doubt, seconds=seconds)
        first = node in self._first_contact
        if status != "ok":
            reason = str(line.get("reason", ""))[:500]
            return NodeAnswer(
                node, str(status), reason=reason, seconds=seconds, first_contact=first
            )
        if line.get("answer") != "match":
            return NodeAnswer(node, "ok", "no-match", seconds=seconds, first_contact=first)
        query = self._query
        try:
            sealed = Sealed.from_json(line.get("sealed"))
            binding = Binding(query.request, query.requester, node)
            payload = json.loads(
                open_sealed(sealed, self._agreement, binding), parse_constant=_no_constant
            )
            if payload.get("node") != node or payload.get("request") != query.request:
                raise SealError("a sealed answer names another node or request")
            listed = payload.get("patients")
            if not isinstance(listed, list) or not all(summary_ok(p) for p in listed):
                raise SealError(
                    "a sealed answer does not hold summaries of the agreed shape (a node on "
                    "another MedSpace release? every node of a network must run the same one)"
                )
            patients = list(listed)
        except (SealError, ValueError, TypeError, AttributeError, RecursionError) as error:
            return NodeAnswer(node, "error", reason=str(error)[:300], seconds=seconds)
        return NodeAnswer(node, "ok", "match", patients, seconds=seconds, first_contact=first)

    def end(self, line: dict[str, Any]) -> None:
        """Take the hub's closing line: the nodes it calls missing, and whether it says
        the result is partial."""
        missing = line.get("missing", [])
        if not isinstance(missing, list) or not all(
            isinstance(n, str) and NODE_NAME_PATTERN.fullmatch(n) for n in missing
        ):
            self._doubts += 1
            return
        self._missing.update(missing)
        self._hub_partial = line.get("partial") is not False

    def completeness(self, answers: list[NodeAnswer]) -> tuple[list[str], bool]:
        """(the nodes without a verified answer, whether the result is partial). A
        hospital that refused or failed is in no timeline either: partial too."""
        verified = {a.node for a in answers if a.status != UNVERIFIED}
        known = set(self._pins.pinned()) | {self._query.requester}
        missing = sorted((self._missing | known) - verified)
        without = any(a.status != "ok" for a in answers)
        return missing, bool(missing) or without or self._doubts > 0 or self._hub_partial

    def _unverified(self, line: dict[str, Any], node: str, status: object) -> str | None:
        """Why the line is not what `node` signed (None when it is)."""
        query = self._query
        answer = line.get("answer") if status == "ok" else None
        reason = line.get("reason") if status != "ok" else None
        if (
            status not in _STATUSES
            or not (answer is None or isinstance(answer, str))
            or not (reason is None or isinstance(reason, str))
        ):
            return f"{node}'s answer line is malformed; it is left out"
        sealed = None
        try:
            if answer == "match":
                sealed = sealed_digest(Sealed.from_json(line.get("sealed")))
            own = node == query.requester
            key = self._own_key if own else self._pins.key_for(node, str(line.get("node_key")))
        except (SealError, RequestRejected) as error:
            return f"{node}'s answer cannot be checked ({error}); it is left out"
        receipt = Receipt(query.request, query.requester, node, str(status), answer, sealed, reason)
        try:
            verified = receipt.verifies(key, line.get("receipt"))
        except MedSpaceError:  # a value canonical JSON cannot hold
            verified = False
        if not verified:
            return (
                f"{node}'s answer does not carry {node}'s signed receipt: the hub may have "
                "altered or made it up, so it is left out; ask again, and tell the hub operator"
            )
        if not own and node not in self._pins.pinned():
            self._pins.pin(node, key)  # first contact: pinned once its signature verified
            self._first_contact.add(node)
        return None


def _no_constant(name: str) -> object:
    """NaN and Infinity are not JSON; a sealed answer holding them is malformed."""
    raise ValueError(f"a sealed answer holds {name}, which is not a JSON number")


__all__ = ["UNVERIFIED", "AnswerReader", "NodeAnswer"]
