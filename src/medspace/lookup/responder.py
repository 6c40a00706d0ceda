"""What a node does with a lookup the hub forwards: check everything itself, then answer
with a sealed minimum-necessary summary, or "no match", or a refusal.

The node never trusts the hub's say-so. It checks, in order: the asking node's signature
(with the identity key it pinned for that node, `pins.py`), the request's freshness and
that it has not seen it before (its lookup log), the clinician's token (with the hub key
it pinned) and that the token's user is the clinician the asking node named and works at
that node, and then decides `lookup` itself with its own standing policy (`ETREAT`
allowed? break-glass allowed?). Only then does it probe its linkage index. Under ETREAT a
patient who opted out of ETREAT is left out (answered as "no match"); under break-glass
(BTG), where its policy allows it, opt-outs are overridden and the steward reviews the
event. The summary is sealed to the agreement key inside the signed request, so only
the asking node can read it. Every step is ledgered by this node (decision, match, answer,
break-glass, alerts): counts and digests, never the patient.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from medspace.errors import MedSpaceError
from medspace.identity import AuthError, Role, User, verify_delegation
from medspace.ledger import Entry, EntryType
from medspace.lookup import _linkage
from medspace.lookup.alerts import (
    CONFIG_FILE,
    Alert,
    AlertLimits,
    clinician_alerts,
    patient_alerts,
)
from medspace.lookup.entries import NodeLedger, b64, digest
from medspace.lookup.errors import RequestRejected
from medspace.lookup.pins import PeerPins
from medspace.lookup.receipt import Receipt, sealed_digest
from medspace.lookup.request import LookupQuery, SignedQuery
from medspace.lookup.review import ANSWERED, LookupLog
from medspace.lookup.seal import Binding, seal
from medspace.lookup.summary import MatchInfo, build_summary, identity_check, warm_up
from medspace.node import Node
from medspace.node.filecache import FileCache
from medspace.node.standing import CONSENT_FILE, POLICY_FILE, load_consent, load_node_policy
from medspace.policy import Context, LookupRequest, MemoryRecorder, Purpose, decide

Clock = Callable[[], datetime]
Prober = Callable[[Node, dict[str, Any]], list[_linkage.Hit]]


MAX_REASON = 300
"""A refusal's or error's reason is cut to this before it is signed (the hub passes on
up to 500 characters)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def justification_digest(text: str) -> str:
    """SHA-256 hex of a justification (what the ledger and the review compare)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class LookupResponder:
    """One node's answers to lookups (thread-safe; the service calls it in threads)."""

    def __init__(
        self,
        node: Node,
        hub_key: Ed25519PublicKey,
        *,
        log: LookupLog | None = None,
        clock: Clock = _utc_now,
        prober: Prober = _linkage.probe,
    ) -> None:
        self.node = node
        self.name = node.name
        self._hub_key = hub_key
        self._pins = PeerPins(node.directory)
        self.log = log or LookupLog(node.directory)
        self._identity = node.identity_private_key()
        self._ledger = NodeLedger(node.name, self._identity)
        self._clock = clock
        self._probe = prober
        # Read on every lookup; parsed again only when a steward changes the file.
        directory = Path(node.directory)
        self._policy = FileCache(
            directory / POLICY_FILE, lambda _: load_node_policy(directory, node.name)
        )
        self._consent = FileCache(directory / CONSENT_FILE, lambda _: load_consent(directory))
        self._limits = FileCache(directory / CONFIG_FILE, lambda _: AlertLimits.load(directory))
        warm_up()

    @property
    def directory(self) -> Path:
        """The node directory."""
        return Path(self.node.directory)

    def handle(self, body: dict[str, Any]) -> dict[str, Any]:
        """Answer one forwarded lookup; the reply carries this node's signed entries."""
        now = self._clock()
        try:
            query, user = self._verify(body, now)
        except (RequestRejected, AuthError) as error:
            entry = self._ledger.draft(
                EntryType.ANSWER, now, status="refused", reason="lookup/unverified"
            )
            return self._reply("refused", str(error), [entry])
        try:
            return self._answer(query, user, now)
        except RequestRejected as error:  # a replay: logged by nobody, ledgered here
            entry = self._ledger.draft(
                EntryType.ANSWER,
                now,
                status="refused",
                reason="lookup/replay",
                request=query.request,
            )
            # No receipt: only the hub can send a request twice, and a signed refusal
            # would let it pass off this hospital's answer as "refused".
            return self._reply("refused", str(error), [entry])

    def _verify(self, body: dict[str, Any], now: datetime) -> tuple[LookupQuery, User]:
        signed = SignedQuery.from_json(body.get("request"))
        requester = signed.query.requester
        key = self._pins.key_for(requester, str(body.get("requester_key", "")))
        query = signed.verify(key)
        self._pins.pin(requester, key)  # first contact: only a key that signed the request
        query.check_fresh(now)
        claims = verify_delegation(
            self._hub_key,
            str(body.get("token", "")),
            audience="lookup",
            binding=query.request,
            now=now,
        )
        user = claims.user
        if (
            user.name != query.clinician
            or user.node != query.requester
            or user.role is not Role.CLINICIAN
        ):
            # Refused unsigned (no receipt): only the hub makes the delegation, so a
            # signed refusal would be one it could pass off as this hospital's answer.
            raise RequestRejected(
                "lookup request refused: the token's user is not the clinician the asking "
                "node named in its signed request"
            )
        return query, user

    def _answer(self, query: LookupQuery, user: User, now: datetime) -> dict[str, Any]:
        event = self.log.record(
            request=query.request,
            role=ANSWERED,
            now=now,
            clinician=query.clinician,
            requester=query.requester,
            purpose=query.purpose.value,
            break_glass=query.break_glass,
            justification=query.justification,
            justification_sha256=justification_digest(query.justification),
            status="received",
        )
        limits = self._limits.get()
        alerts: list[Alert] = clinician_alerts(
            self.log,
            limits,
            requester=query.requester,
            clinician=query.clinician,
            role=ANSWERED,
            now=now,
        )
        recorder = MemoryRecorder()
        policy = self._policy.get()
        decision = decide(
            user,
            "lookup",
            LookupRequest(query.purpose, query.justification, requester=query.requester),
            Context(now=now, recorder=recorder, node=self.name, node_policy=policy),
        )
        entries = [self._ledger.draft_decision(r) for r in recorder.records]
        if not decision.allow:
            self.log.finish(event, "refused", now=now, requester=query.requester)
            entries += self._alert_entries(alerts, query, now)
            entries.append(
                self._ledger.draft(
                    EntryType.ANSWER,
                    now,
                    status="refused",
                    reason=decision.code,
                    request=query.request,
                    purpose=query.purpose.value,
                )
            )
            return self._reply("refused", decision.reason, entries, query=query)
        if query.break_glass:
            entries.append(
                self._ledger.draft(
                    EntryType.BREAK_GLASS,
                    now,
                    request=query.request,
                    purpose=Purpose.BTG.value,
                    artefacts={
                        "justification": "sha256:" + justification_digest(query.justification)
                    },
                )
            )
        try:
            hits = self._probe(self.node, query.tokens)
            kept = self._apply_consent(hits, query.purpose)
            summaries = []
            today = now.date()
            with self.node.store.read_connection() as conn:
                for hit, _pseudonym in kept:
                    source_id = hit.person_source_id
                    summaries.append(
                        build_summary(
                            conn,
                            source_id,
                            MatchInfo(hit.kind, hit.score),
                            today=today,
                            names_patient=identity_check(self.node.store, conn, source_id),
                        )
                    )
        except MedSpaceError as error:
            self.log.finish(event, "error", now=now, requester=query.requester)
            entries.append(
                self._ledger.draft(EntryType.ANSWER, now, status="error", request=query.request)
            )
            return self._reply("error", str(error)[:300], entries, query=query)
        matches = [(pseudonym, hit.kind) for hit, pseudonym in kept]
        status = "match" if kept else "no-match"
        self.log.finish(event, status, matches, now=now, requester=query.requester)
        for _hit, pseudonym in kept:
            alerts += patient_alerts(self.log, limits, pseudonym=pseudonym, now=now)
        entries += self._alert_entries(alerts, query, now)
        reply: dict[str, Any] = {"answer": status}
        artefacts: dict[str, str] = {}
        sealed_sha256 = None
        if kept:
            entries.append(
                self._ledger.draft(
                    EntryType.MATCH,
                    now,
                    request=query.request,
                    count=len(kept),
                    status="exact" if all(h.kind == "exact" for h, _ in kept) else "fuzzy",
                )
            )
            payload = json.dumps(
                {"node": self.name, "request": query.request, "patients": summaries},
                separators=(",", ":"),
                ensure_ascii=False,
            ).encode("utf-8")
            sealed = seal(
                payload,
                query.agreement_public_key(),
                Binding(query.request, query.requester, self.name),
            )
            reply["sealed"] = sealed.to_json()
            artefacts["answer"] = digest(sealed.ciphertext)
            sealed_sha256 = sealed_digest(sealed)
        entries.append(
            self._ledger.draft(
                EntryType.ANSWER,
                now,
                artefacts=artefacts,
                status=status,
                request=query.request,
                purpose=query.purpose.value,
                count=len(kept),
            )
        )
        return self._reply("ok", None, entries, query=query, sealed_sha256=sealed_sha256, **reply)

    def _apply_consent(
        self, hits: list[_linkage.Hit], purpose: Purpose
    ) -> list[tuple[_linkage.Hit, str]]:
        """(hit, pseudonym) for each patient that may be returned under `purpose`."""
        consent = self._consent.get()
        kept = []
        for hit in hits:
            pseudonym = self.node.store.pseudonym(hit.person_source_id)
            # Break-glass overrides opt-outs by definition (the decision allowed it only
            # where the node's policy does); under ETREAT an opted-out patient is absent.
            if purpose is Purpose.ETREAT and consent.opted_out(pseudonym, Purpose.ETREAT):
                continue
            kept.append((hit, pseudonym))
        return kept

    def _alert_entries(self, alerts: list[Alert], query: LookupQuery, now: datetime) -> list[Entry]:
        bodies = []
        for alert in alerts:
            self.log.add_alert(alert.kind, query.request, alert.count, now)
            bodies.append(
                self._ledger.draft(
                    EntryType.ALERT,
                    now,
                    reason=alert.kind,
                    request=query.request,
                    count=alert.count,
                )
            )
        return bodies

    def _reply(
        self,
        status: str,
        reason: str | None,
        entries: list[Entry],
        *,
        query: LookupQuery | None = None,
        sealed_sha256: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """The reply to the hub: status, this node's signed entries (and any queued), and
        for a request it could read, a receipt of what it answered (`receipt.py`)."""
        queued = self.log.outbox()
        if queued:
            self.log.delivered([i for i, _ in queued])
        reply: dict[str, Any] = {
            "type": "reply",
            "status": status,
            "node": self.name,
            "entries": b64(self._ledger.sign_all(entries) + [body for _, body in queued]),
            **extra,
        }
        if reason is not None:
            reply["reason"] = reason = reason[:MAX_REASON]
        if query is not None:
            receipt = Receipt(
                query.request,
                query.requester,
                self.name,
                status,
                extra.get("answer"),
                sealed_sha256,
                reason,
            )
            reply["receipt"] = receipt.sign(self._identity)
        return reply


def responder_for(node: Node, hub_key_text: str) -> LookupResponder:
    """A responder for `node` trusting the hub token key it pinned."""
    from medspace.identity import parse_public_key

    return LookupResponder(node, parse_public_key(hub_key_text))
