"""The asking side of a lookup, run at the clinician's node (the CLI and the node API
share it): validate the input, compute linkage tokens, sign the request, send it, open
the sealed answers as they stream in, and ledger the lookup and the view.

Nothing identifying leaves the node: the hub gets linkage tokens (under the network
linkage key it does not have), the purpose and the justification after PHI scrubbing
(the clinician's own words stay only in digest form in the ledger). The clinician's
typed identity is used to compute tokens and then dropped; it is not logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from medspace.errors import MedSpaceError
from medspace.hub.client import HubClient
from medspace.ledger import EntryType
from medspace.lookup import _linkage
from medspace.lookup.alerts import AlertLimits, clinician_alerts
from medspace.lookup.answers import AnswerReader, NodeAnswer
from medspace.lookup.entries import NodeLedger, b64
from medspace.lookup.errors import LookupInputError
from medspace.lookup.justification import scrub_justification
from medspace.lookup.pins import PeerPins
from medspace.lookup.request import MAX_JUSTIFICATION, LookupQuery, sign_query
from medspace.lookup.responder import justification_digest
from medspace.lookup.review import ASKED, LookupLog
from medspace.node import Node
from medspace.policy import Purpose

DEFAULT_DEADLINE = 2.0
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
    if len(text) > MAX_JUSTIFICATION:
        raise LookupInputError(
            f"--reason is longer than {MAX_JUSTIFICATION} characters; say why in fewer "
            "(nothing was sent)"
        )
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
    if len(justification) > MAX_JUSTIFICATION:  # tags can be longer than what they hide
        raise LookupInputError(
            f"--reason is {MAX_JUSTIFICATION} characters or more once names and dates in it "
            "are masked; say why in fewer (nothing was sent)"
        )
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
        reader = AnswerReader(query, agreement, PeerPins(node.directory), node.identity_public_key)
        for line in hub.stream_lines("/lookup", body):
            kind = line.get("type") if isinstance(line, dict) else None
            if kind == "end":
                reader.end(line)
                continue
            answer = reader.answer(line, time.perf_counter() - started)
            if answer is not None:
                answers.append(answer)
                if on_answer is not None:
                    on_answer(answer)
        missing, partial = reader.completeness(answers)
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
