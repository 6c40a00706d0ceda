"""The signed lookup request, and replay protection for it.

The asking node signs every request with its Ed25519 identity key, so neither the hub
nor anyone on the way can change who asks, for which purpose, with which justification,
for which linkage tokens, or to which agreement key the answers are sealed. The message
is `CONTEXT || RFC 8785 JSON of the query`; it carries a random request id (UUID 4), a
nonce and the time it was issued. Receivers (the hub and every responder) accept a
request only within `FRESHNESS` of its issue time and only once: they remember request
ids for at least twice that window (`SeenRequests` in memory at the hub; the node keeps
them in its lookup log), so a replay is refused even after a restart of the receiver
once the window has passed.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from medspace.identity import IdentityError, check_node_name
from medspace.ledger import CanonicalError, canonical_bytes
from medspace.lookup.errors import RequestRejected
from medspace.policy import LOOKUP_PURPOSES, Purpose

CONTEXT = b"medspace/lookup-request/v1\n"
FRESHNESS = timedelta(seconds=60)
"""How far a request's issue time may lie from the receiver's clock (either way)."""
MAX_JUSTIFICATION = 2000
MAX_TOKENS_BYTES = 16 * 1024
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_NONCE = re.compile(r"[0-9a-f]{32}")
_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_FIELDS = frozenset(
    {
        "v",
        "request",
        "requester",
        "clinician",
        "purpose",
        "justification",
        "tokens",
        "agreement_key",
        "issued",
        "nonce",
    }
)


def _reject(what: str) -> RequestRejected:
    return RequestRejected(f"lookup request refused: {what}")


def _time_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class LookupQuery:
    """What one clinician asks of every node: who asks, why, and the linkage tokens."""

    request: str
    requester: str
    clinician: str
    purpose: Purpose
    justification: str
    tokens: dict[str, Any]
    agreement_key: str
    issued: str
    nonce: str

    @classmethod
    def new(
        cls,
        *,
        requester: str,
        clinician: str,
        purpose: Purpose,
        justification: str,
        tokens: dict[str, Any],
        agreement_key: X25519PublicKey,
        now: datetime | None = None,
    ) -> LookupQuery:
        """A fresh query with a random request id and nonce, issued now."""
        query = cls(
            request=str(uuid.uuid4()),
            requester=requester,
            clinician=clinician,
            purpose=purpose,
            justification=justification,
            tokens=tokens,
            agreement_key=base64.b64encode(agreement_key.public_bytes_raw()).decode("ascii"),
            issued=_time_text(now or datetime.now(UTC)),
            nonce=secrets.token_hex(16),
        )
        return cls.from_json(query.to_json())  # same checks as a received one

    def to_json(self) -> dict[str, Any]:
        """The query as JSON (what is signed, canonically)."""
        return {
            "v": 1,
            "request": self.request,
            "requester": self.requester,
            "clinician": self.clinician,
            "purpose": self.purpose.value,
            "justification": self.justification,
            "tokens": self.tokens,
            "agreement_key": self.agreement_key,
            "issued": self.issued,
            "nonce": self.nonce,
        }

    @classmethod
    def from_json(cls, value: object) -> LookupQuery:
        """Validate an untrusted query; raises `RequestRejected` naming what is wrong."""
        if not isinstance(value, dict) or set(value) != _FIELDS or value["v"] != 1:
            raise _reject("the query must be a version 1 object with exactly its fields")
        if not isinstance(value["request"], str) or not _UUID.fullmatch(value["request"]):
            raise _reject("the request id must be a random (version 4) UUID")
        try:
            check_node_name(value["requester"])
        except IdentityError:
            raise _reject("the asking node's name is malformed") from None
        if not isinstance(value["clinician"], str) or not _USER.fullmatch(value["clinician"]):
            raise _reject("the clinician's user name is malformed")
        try:
            purpose = Purpose(value["purpose"])
        except ValueError:
            raise _reject("the purpose must be ETREAT or BTG") from None
        if purpose not in LOOKUP_PURPOSES:
            raise _reject("the purpose must be ETREAT or BTG")
        justification = value["justification"]
        if not isinstance(justification, str) or len(justification) > MAX_JUSTIFICATION:
            raise _reject(f"the justification must be text of at most {MAX_JUSTIFICATION} chars")
        tokens = value["tokens"]
        try:
            if not isinstance(tokens, dict) or len(canonical_bytes(tokens)) > MAX_TOKENS_BYTES:
                raise _reject("the linkage tokens must be an object of at most 16 KiB")
        except CanonicalError:
            raise _reject("the linkage tokens are not canonical JSON") from None
        try:
            raw = base64.b64decode(value["agreement_key"], validate=True)
            X25519PublicKey.from_public_bytes(raw)
        except (binascii.Error, TypeError, ValueError):
            raise _reject("the agreement key must be a base64 X25519 public key") from None
        if not isinstance(value["issued"], str) or not _TIME.fullmatch(value["issued"]):
            raise _reject("the issue time must be RFC 3339 UTC with microseconds")
        if not isinstance(value["nonce"], str) or not _NONCE.fullmatch(value["nonce"]):
            raise _reject("the nonce must be 32 lowercase hex digits")
        return cls(
            request=value["request"],
            requester=value["requester"],
            clinician=value["clinician"],
            purpose=purpose,
            justification=justification,
            tokens=tokens,
            agreement_key=value["agreement_key"],
            issued=value["issued"],
            nonce=value["nonce"],
        )

    @property
    def issued_at(self) -> datetime:
        """The issue time."""
        return datetime.fromisoformat(self.issued)

    @property
    def break_glass(self) -> bool:
        """True when the clinician broke the glass (purpose BTG)."""
        return self.purpose is Purpose.BTG

    def agreement_public_key(self) -> X25519PublicKey:
        """The asking node's X25519 key, which answers are sealed to."""
        return X25519PublicKey.from_public_bytes(base64.b64decode(self.agreement_key))

    def signed_bytes(self) -> bytes:
        """Exactly what the asking node signs."""
        return CONTEXT + canonical_bytes(self.to_json())

    def check_fresh(self, now: datetime) -> None:
        """Raise `RequestRejected` unless the query was issued within `FRESHNESS` of now."""
        if abs(now - self.issued_at) > FRESHNESS:
            raise _reject(
                f"it was issued more than {FRESHNESS.seconds} s from this clock (a replay, "
                "or a clock that is off: check NTP on both machines)"
            )


@dataclass(frozen=True, slots=True)
class SignedQuery:
    """A query with the asking node's Ed25519 signature."""

    query: LookupQuery
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        """The JSON form the hub forwards."""
        return {"query": self.query.to_json(), "sig": base64.b64encode(self.signature).decode()}

    @classmethod
    def from_json(cls, value: object) -> SignedQuery:
        """Parse (not verify) a signed query; raises `RequestRejected`."""
        if not isinstance(value, dict) or set(value) != {"query", "sig"}:
            raise _reject("a signed request must be an object with exactly query and sig")
        try:
            signature = base64.b64decode(value["sig"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise _reject("the signature is not base64") from None
        if len(signature) != 64:
            raise _reject("the signature must be 64 bytes (Ed25519)")
        return cls(LookupQuery.from_json(value["query"]), signature)

    def verify(self, public_key: Ed25519PublicKey) -> LookupQuery:
        """The query if the asking node's key signed it; raises `RequestRejected`."""
        try:
            public_key.verify(self.signature, self.query.signed_bytes())
        except InvalidSignature:
            raise _reject(
                f"the signature does not verify with node {self.query.requester}'s key "
                "(forged or altered on the way)"
            ) from None
        return self.query


def sign_query(query: LookupQuery, key: Ed25519PrivateKey) -> SignedQuery:
    """Sign `query` with the asking node's identity key."""
    return SignedQuery(query, key.sign(query.signed_bytes()))


class SeenRequests:
    """Request ids seen in the last `2 * FRESHNESS` (thread-safe, in memory)."""

    def __init__(self, keep: timedelta = 2 * FRESHNESS) -> None:
        self._keep = keep
        self._seen: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def claim(self, request: str, now: datetime) -> None:
        """Remember `request`; raises `RequestRejected` if it was seen before."""
        with self._lock:
            if len(self._seen) > 1024:
                horizon = now - self._keep
                self._seen = {r: t for r, t in self._seen.items() if t >= horizon}
            if request in self._seen:
                raise _reject("this request id was seen before (a replay)")
            self._seen[request] = now
