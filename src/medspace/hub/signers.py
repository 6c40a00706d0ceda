"""Who signs ledger entries at the hub, the key resolver every verifier uses, and how a
user's own signature gets onto the entries made in their name.

The hub never holds a user's private key (see `medspace.identity.userkeys`). Entries in a
user's name for the actions in `SIGNED_ACTIONS` (filing, approving, denying, revoking a
project, submitting a task) are signed by the user's own key, on the user's machine, over
exactly the entry the hub will log. That is a two-step exchange on the same route:

1. The client calls the route without signatures. The hub runs the policy decision as a
   dry run (nothing is ledgered, nothing changes) and answers HTTP 428 with the entry
   drafts it would log (`SignatureRequired`).
2. The client checks each draft (its own name, the project it asked about, the contract
   hash it computed itself for approvals), signs it, and repeats the call with the
   signed entries. The hub checks them against the user's active registered key and
   its own fresh decision (every field equal but the time, which must be within
   `MAX_SKEW` of the hub's clock) and logs the user-signed entries themselves.

A two-step exchange rather than a client that rebuilds the entry from the request: the
entry's fields come from the policy engine (reason codes, agreement hash, node), and a
second copy of that logic in every client would drift from the hub's.

Everything else the hub records (reads of projects and of the ledger, admin actions,
and every denial) is the hub's own observation: signed by the hub as actor `hub`, the
user named by the artefact `user` = SHA-256 of their user name. The hub can forge its own
observations, but no longer a user's act.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from medspace.hub import tables
from medspace.identity import User
from medspace.identity.errors import SignatureRequired, UserKeyError
from medspace.identity.userkeys import UserKey, check_fresh
from medspace.ledger import Entry, EntryError, EntrySigner, SignedEntry, SignerKey, entry_key_id
from medspace.policy import Context, Decision, DecisionRecord, PolicyEngine

HUB_PRINCIPAL = "hub"
SIGNED_ACTIONS = frozenset(
    {"project.create", "project.approve", "project.deny", "project.revoke", "task.submit"}
)
"""Actions whose allowed decision is logged only as an entry signed by the user."""

MAX_SIGNED_ENTRIES = 1000


def user_digest(name: str) -> str:
    """How a hub-signed entry names a user: `sha256:` of the UTF-8 user name."""
    return "sha256:" + hashlib.sha256(name.encode("utf-8")).hexdigest()


def parse_signed_entries(text: str | None) -> list[SignedEntry]:
    """Signed entries from a request header: base64 bodies separated by commas.

    Raises `UserKeyError` when one is not a well-formed signed entry."""
    if not text:
        return []
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) > MAX_SIGNED_ENTRIES:
        raise UserKeyError(f"at most {MAX_SIGNED_ENTRIES} signed entries per request")
    try:
        return [SignedEntry.from_bytes(base64.b64decode(p, validate=True)) for p in parts]
    except (binascii.Error, ValueError, EntryError):
        raise UserKeyError(
            "a signed entry in the request is malformed; let the MedSpace client sign"
        ) from None


def _without_time(entry: Entry) -> dict[str, Any]:
    data = entry.to_json()
    del data["time"]
    return data


class HubRecorder:
    """Records one request's decisions (a `DecisionRecorder`).

    Allowed decisions of `SIGNED_ACTIONS` taken by a user are logged as the entry that
    user signed (taken from `acts`; none → the decision is refused). Everything else is
    signed by the hub as its own observation. In a dry run (`drafts` given) nothing is
    logged: the drafts of user-signed entries are collected instead."""

    def __init__(
        self,
        append: Callable[[Sequence[SignedEntry]], list[int]],
        hub_signer: EntrySigner,
        *,
        acts: UserActs | None = None,
        drafts: list[Entry] | None = None,
    ) -> None:
        self._append = append
        self._hub_signer = hub_signer
        self._acts = acts
        self._drafts = drafts

    def record(self, record: DecisionRecord) -> None:
        """Log (or, in a dry run, collect) `record`; raises if it cannot be logged."""
        fields = record.ledger_fields()
        if record.allow and record.action in SIGNED_ACTIONS and record.actor != "anonymous":
            entry = Entry(**fields)
            if self._drafts is not None:
                self._drafts.append(entry)
                return
            signed = None if self._acts is None else self._acts.take(entry)
            if signed is None:
                raise UserKeyError(
                    f"{record.action} needs an entry signed by the user's own key; "
                    "the request carried none that matches"
                )
            self._append([signed])
            return
        if self._drafts is not None:
            return
        self._append([self._hub_signer.sign(hub_observation(record))])


def hub_observation(record: DecisionRecord) -> Entry:
    """The hub's own (unsigned) ledger entry for a decision it observed: the hub as actor,
    the user named only by a digest."""
    fields = record.ledger_fields()
    if fields["actor"] != "anonymous":
        artefacts = dict(fields["artefacts"])
        artefacts["user"] = user_digest(fields["actor"])
        fields["artefacts"] = artefacts
    fields["actor"] = HUB_PRINCIPAL
    return Entry(**fields)


class UserActs:
    """The entries one user signed for one request, and the decisions they cover.

    `plan` dry-runs a decision and remembers the drafts it needs; `require` raises
    `SignatureRequired` with every draft not yet covered by a signed entry; `decide`
    takes the real decision, logging the matching user-signed entry.
    """

    def __init__(
        self,
        user: User,
        signed: Sequence[SignedEntry],
        key: UserKey | None,
        *,
        now: datetime,
        policy: PolicyEngine,
        context: Callable[..., Context],
        append: Callable[[Sequence[SignedEntry]], list[int]],
        hub_signer: EntrySigner,
        spend: Callable[[SignedEntry], None],
    ) -> None:
        self.user = user
        self._spend = spend
        self._policy = policy
        self._context = context
        self._append = append
        self._hub_signer = hub_signer
        self._missing: list[Entry] = []
        self.accepted: list[SignedEntry] = []
        if signed and key is None:
            raise UserKeyError(
                f"user {user.name} has no registered signing key; run `medspace login` to "
                "create and register one"
            )
        for item in signed:
            _check_signed(item, user, key, now)
        self._pending = list(signed)

    def _covered(self, entry: Entry) -> bool:
        wanted = _without_time(entry)
        return any(_without_time(s.entry) == wanted for s in self._pending)

    def plan(self, action: str, resource: object, **context: Any) -> Decision:
        """Dry-run `action` (nothing is logged); remember the drafts it needs signed."""
        drafts: list[Entry] = []
        recorder = HubRecorder(self._append, self._hub_signer, drafts=drafts)
        decision = self._policy.decide(
            self.user, action, resource, self._context(recorder=recorder, **context)
        )
        self._missing.extend(d for d in drafts if not self._covered(d))
        return decision

    def require(self) -> None:
        """Raise `SignatureRequired` (with the drafts) if a planned entry is unsigned;
        then spend every signed entry, so none serves twice (a replay raises
        `UserKeyError` before anything happens)."""
        if self._missing:
            raise SignatureRequired(
                "sign these entries with your key and send them with the request "
                "(the MedSpace client does this for you after `medspace login`)",
                [d.to_json() for d in self._missing],
            )
        for signed in self._pending:
            self._spend(signed)

    def decide(self, action: str, resource: object, **context: Any) -> Decision:
        """Take the decision for real; a user-signed entry is logged for an allow."""
        recorder = HubRecorder(self._append, self._hub_signer, acts=self)
        return self._policy.decide(
            self.user, action, resource, self._context(recorder=recorder, **context)
        ).require()

    def take(self, entry: Entry) -> SignedEntry | None:
        """The signed entry matching `entry` (every field but the time), removed from
        the pending ones; None when there is none."""
        wanted = _without_time(entry)
        for index, signed in enumerate(self._pending):
            if _without_time(signed.entry) == wanted:
                del self._pending[index]
                self.accepted.append(signed)
                return signed
        return None


def _check_signed(signed: SignedEntry, user: User, key: UserKey | None, now: datetime) -> None:
    assert key is not None
    if signed.entry.actor != user.name:
        raise UserKeyError("a signed entry names another actor than you; sign only your own")
    if signed.key_id != key.key_id:
        raise UserKeyError(
            "a signed entry is not signed by your registered key; log in again on the "
            "machine that holds it, or ask an admin to reset your key"
        )
    try:
        key.public_key.verify(signed.signature, signed.signed_message)
    except InvalidSignature:
        raise UserKeyError("a signed entry's signature does not verify with your key") from None
    check_fresh(signed.entry, now)


class SignerDirectory:
    """Every entry-signing key the hub knows (a `medspace.ledger.KeyResolver`)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        tables.metadata.create_all(engine)
        self._cache: dict[str, SignerKey] = {}

    def add(self, principal: str, kind: str, public_key: Ed25519PublicKey) -> str:
        """Remember `public_key` as `principal`'s (idempotent); returns its key id."""
        key_id = entry_key_id(public_key)
        raw = base64.b64encode(public_key.public_bytes_raw()).decode("ascii")
        with self._engine.begin() as conn:
            row = conn.execute(
                sa.select(tables.signers.c.principal).where(tables.signers.c.key_id == key_id)
            ).one_or_none()
            if row is None:
                conn.execute(
                    tables.signers.insert().values(
                        key_id=key_id, principal=principal, kind=kind, public_key=raw
                    )
                )
        return key_id

    def resolve(self, key_id: str) -> SignerKey | None:
        """The key with this id, or None."""
        cached = self._cache.get(key_id)
        if cached is not None:
            return cached
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(tables.signers).where(tables.signers.c.key_id == key_id)
            ).one_or_none()
        if row is None:
            return None
        key = SignerKey(
            row.principal, Ed25519PublicKey.from_public_bytes(base64.b64decode(row.public_key))
        )
        self._cache[key_id] = key
        return key

    def all(self) -> list[dict[str, str]]:
        """Every key as JSON-ready rows (principal, kind, key_id, base64 public key)."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(tables.signers).order_by(tables.signers.c.key_id))
            return [
                {
                    "key_id": r.key_id,
                    "principal": r.principal,
                    "kind": r.kind,
                    "public_key": r.public_key,
                }
                for r in rows
            ]
