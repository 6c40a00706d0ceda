"""The asking side of a lookup, run at the clinician's node (the CLI and the node API
share it): validate the input, compute linkage tokens, sign the request, send it, open
the sealed answers as they stream in, and ledger the lookup and the view.

Nothing identifying leaves the node: the hub gets linkage tokens (under the network
linkage key it does not have), the purpose and the justification after PHI scrubbing
(the clinician's own words stay only in digest form in the ledger). The clinician's
typed identity is used to compute tokens and then dropped; it is not logged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from medspace.errors import MedSpaceError
from medspace.hub.client import HubClient
from medspace.ledger import EntryType
from medspace.lookup import _linkage
from medspace.lookup.alerts import AlertLimits, clinician_alerts
from medspace.lookup.entries import NodeLedger, b64
from medspace.lookup.errors import LookupInputError, RequestRejected, SealError
from medspace.lookup.justification import scrub_justification
from medspace.lookup.pins import PeerPins
from medspace.lookup.receipt import Receipt, sealed_digest
from medspace.lookup.request import LookupQuery, sign_query
from medspace.lookup.responder import justification_digest
from medspace.lookup.review import ASKED, LookupLog
from medspace.lookup.seal import Binding, Sealed, open_sealed
from medspace.node import Node
from medspace.policy import Purpose

DEFAULT_DEADLINE = 2.0
UNVERIFIED = "unverified"
"""An answer line whose node's signed receipt does not verify (altered on the way)."""
MIN_JUSTIFICATION = 10
"""The policy's minimum justification length (the hub and every responder enforce it
too); checked here first so that nothing is sent without one."""
ID_SYSTEMS = ("CN-RID", "US-SSN")
SEXES = ("male", "female", "other", "unknown")


@dataclass(frozen=True, slots=True)
class PatientInput:
    """Who the clinician is looking for, as typed. Never logged or sent as such."""

    national_id: str | None = None
    id_system: str | None = None
    name: str | None = None
    birth_date: date | None = None
    sex: str | None = None
    family_name: str | None = None  # when the name comes in parts (a registration system)
    given_name: str | None = None
    phone: str | None = None  # optional: confirms or contradicts a fuzzy match

    def __repr__(self) -> str:
        return "PatientInput(<hidden>)"

    @classmethod
    def parse(
        cls,
        *,
        national_id: str | None = None,
        id_system: str | None = None,
        name: str | None = None,
        birth_date: str | None = None,
        sex: str | None = None,
        phone: str | None = None,
    ) -> PatientInput:
        """Check the input's shape; raises `LookupInputError` saying what is missing or
        malformed (without echoing it). Check digits are checked by the linkage tokens."""
        national_id = (national_id or "").strip() or None
        name = (name or "").strip() or None
        if id_system is not None and id_system not in ID_SYSTEMS:
            raise LookupInputError(f"--id-system must be one of {', '.join(ID_SYSTEMS)}")
        if national_id is not None and id_system is None:
            id_system = (
                "US-SSN"
                if national_id.replace("-", "").isdigit() and len(national_id.replace("-", "")) == 9
                else "CN-RID"
            )
        day = None
        if birth_date:
            try:
                day = date.fromisoformat(birth_date.strip())
            except ValueError:
                raise LookupInputError("--dob must be a date like 1980-04-30") from None
        if sex is not None and sex not in SEXES:
            raise LookupInputError(f"--sex must be one of {', '.join(SEXES)}")
        if national_id is None and (name is None or day is None):
            raise LookupInputError(
                "give the patient's --id, or --name with --dob (and --sex if known)"
            )
        phone = (phone or "").strip() or None
        return cls(national_id, id_system, name, day, sex, phone=phone)


@dataclass(frozen=True, slots=True)
class NodeAnswer:
    """One node's answer, opened: status ok/refused/error/missing, match/no-match, and
    the summaries (one per matched patient record) when it matched."""

    node: str
    status: str
    answer: str | None = None
    patients: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class LookupOutcome:
    """Everything one lookup returned."""

    request: str
    purpose: str
    answers: list[NodeAnswer]
    missing: list[str]
    partial: bool
    seconds: float

    @property
    def matched(self) -> list[NodeAnswer]:
        """The answers that found the patient."""
        return [a for a in self.answers if a.answer == "match"]


def check_reason(reason: str | None) -> str:
    """The justification, if long enough; raises `LookupInputError` otherwise."""
    text = (reason or "").strip()
    if len(text) < MIN_JUSTIFICATION:
        raise LookupInputError(
            f"a lookup needs --reason: at least {MIN_JUSTIFICATION} characters saying why "
            "this patient's records are needed now (nothing was sent)"
        )
    return text


def ask(
    node: Node,
    hub: HubClient,
    *,
    clinician: str,
    patient: PatientInput,
    reason: str,
    break_glass: bool = False,
    deadline: float = DEFAULT_DEADLINE,
    on_answer: Callable[[NodeAnswer], None] | None = None,
    log: LookupLog | None = None,
) -> LookupOutcome:
    """Run one lookup from `node` as `clinician` (logged in on `hub`); see the module
    docstring. Raises `LookupInputError` / `LinkageInputError` before anything is sent,
    and the hub's refusal (`HubRequestError`) after."""
    text = check_reason(reason)
    tokens = _linkage.tokens_from_input(
        node,
        national_id=patient.national_id,
        id_system=patient.id_system,
        name=patient.name,
        birth_date=patient.birth_date,
        sex=patient.sex,
        family_name=patient.family_name,
        given_name=patient.given_name,
        phone=patient.phone,
    )
    started = time.perf_counter()
    now = datetime.now(UTC)
    purpose = Purpose.BTG if break_glass else Purpose.ETREAT
    justification = scrub_justification(text, patient)
    agreement = node.agreement_private_key()
    query = LookupQuery.new(
        requester=node.name,
        clinician=clinician,
        purpose=purpose,
        justification=justification,
        tokens=tokens,
        agreement_key=agreement.public_key(),
        now=now,
    )
    signed = sign_query(query, node.identity_private_key())
    ledger = NodeLedger(node.name, node.identity_private_key())
    own_log = log is None
    log = log or LookupLog(node.directory)
    try:
        event = log.record(
            request=query.request,
            role=ASKED,
            now=now,
            clinician=clinician,
            requester=node.name,
            purpose=purpose.value,
            break_glass=break_glass,
            justification=justification,
            justification_sha256=justification_digest(justification),
            status="sent",
        )
        digest = {"justification": "sha256:" + justification_digest(justification)}
        entries = [
            ledger.draft(
                EntryType.LOOKUP,
                now,
                artefacts=digest,
                request=query.request,
                purpose=purpose.value,
                status="sent",
            )
        ]
        if break_glass:
            entries.append(
                ledger.draft(
                    EntryType.BREAK_GLASS,
                    now,
                    artefacts=digest,
                    request=query.request,
                    purpose=purpose.value,
                )
            )
        for alert in clinician_alerts(
            log,
            AlertLimits.load(node.directory),
            requester=node.name,
            clinician=clinician,
            role=ASKED,
            now=now,
        ):
            log.add_alert(alert.kind, query.request, alert.count, now)
            entries.append(
                ledger.draft(
                    EntryType.ALERT,
                    now,
                    reason=alert.kind,
                    request=query.request,
                    count=alert.count,
                )
            )
        queued = log.outbox(limit=16)
        body = {
            "request": signed.to_json(),
            "entries": b64(ledger.sign_all(entries) + [b for _, b in queued]),
            "deadline": deadline,
        }
        answers: list[NodeAnswer] = []
        missing: list[str] = []
        partial = False
        pins = PeerPins(node.directory)
        for line in hub.stream_lines("/lookup", body):
            if line.get("type") == "answer":
                answer = _open(line, query, agreement, pins, time.perf_counter() - started)
                if answer.status != "missing":
                    answers.append(answer)
                    if on_answer is not None:
                        on_answer(answer)
            elif line.get("type") == "end":
                missing = [str(n) for n in line.get("missing", [])]
                partial = bool(line.get("partial"))
        # An answer the hub may have altered counts as not received.
        partial = partial or any(a.status == UNVERIFIED for a in answers)
        if queued:
            log.delivered([i for i, _ in queued])
        outcome = LookupOutcome(
            query.request,
            purpose.value,
            answers,
            missing,
            partial,
            time.perf_counter() - started,
        )
        log.finish(
            event,
            "partial" if partial else "completed",
            now=now,
            requester=node.name,
        )
        _record_view(hub, ledger, log, outcome)
        return outcome
    finally:
        if own_log:
            log.close()


def _open(
    line: dict[str, Any], query: LookupQuery, agreement: Any, pins: PeerPins, seconds: float
) -> NodeAnswer:
    node = str(line.get("node"))
    status = str(line.get("status"))
    if status == "missing":
        return NodeAnswer(node, status, reason=str(line.get("reason", "")), seconds=seconds)
    doubt = _unverified(line, query, pins)
    if doubt is not None:
        return NodeAnswer(node, UNVERIFIED, reason=doubt, seconds=seconds)
    if status != "ok":
        return NodeAnswer(node, status, reason=str(line.get("reason", "")), seconds=seconds)
    if line.get("answer") != "match":
        return NodeAnswer(node, "ok", "no-match", seconds=seconds)
    try:
        sealed = Sealed.from_json(line.get("sealed"))
        plain = open_sealed(sealed, agreement, Binding(query.request, query.requester, node))
        payload = json.loads(plain)
        if payload.get("node") != node or payload.get("request") != query.request:
            raise SealError("a sealed answer names another node or request")
        patients = [p for p in payload.get("patients", []) if isinstance(p, dict)]
    except (SealError, ValueError, AttributeError) as error:
        return NodeAnswer(node, "error", reason=str(error), seconds=seconds)
    return NodeAnswer(node, "ok", "match", patients, seconds=seconds)


def _unverified(line: dict[str, Any], query: LookupQuery, pins: PeerPins) -> str | None:
    """Why the line is not what its node signed (None when it is): the node's receipt
    must verify with its identity key, pinned on first contact (`receipt.py`)."""
    node = str(line.get("node"))
    status = str(line.get("status"))
    answer = line.get("answer") if status == "ok" else None
    sealed = None
    try:
        if answer == "match":
            sealed = sealed_digest(Sealed.from_json(line.get("sealed")))
        key = pins.check(node, str(line.get("node_key", "")))
    except (SealError, RequestRejected) as error:
        return f"{node}'s answer cannot be checked ({error}); it is left out"
    receipt = Receipt(query.request, query.requester, node, status, answer, sealed)
    if not receipt.verifies(key, line.get("receipt")):
        return (
            f"{node}'s answer does not carry {node}'s signed receipt: the hub may have altered "
            "or made it up, so it is left out; ask again, and tell the hub operator"
        )
    return None


def _record_view(
    hub: HubClient, ledger: NodeLedger, log: LookupLog, outcome: LookupOutcome
) -> None:
    """Ledger that the clinician opened the answers (queued if the hub refuses it now)."""
    body = ledger.sign(
        EntryType.VIEW,
        datetime.now(UTC),
        request=outcome.request,
        count=len(outcome.matched),
        status="partial" if outcome.partial else "completed",
    )
    try:
        hub.post("/lookup/entries", {"entries": b64([body])})
    except MedSpaceError:
        log.queue([body])
