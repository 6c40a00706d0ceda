"""The hub's part of the emergency lookup: check, fan out, stream the sealed answers back.

The hub sees neither the patient nor the records. It receives linkage tokens (keyed
HMAC and Bloom-filter encodings under a key it does not have) inside a request the
asking node signed, and it routes back ciphertext sealed to the asking node.

What it checks before anything is sent: the request's signature with the asking node's
registered key, its freshness and that the request id is new (`SeenRequests`), the
caller's token, and `decide("lookup")` (a clinician, bound to the asking node; purpose
ETREAT, or BTG where the asking node's announced policy allows break-glass; a written
justification). A refusal is ledgered like every decision. Then every connected node,
the asking node included (its own records join the timeline), gets the request in
parallel; answers stream back as NDJSON lines in the order they arrive; after the
deadline (default 2 s) a final line names the nodes that did not answer and marks the
result partial. The nodes' signed entries and the hub's own `lookup` entry are appended
to the ledger in one batch before that final line.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from medspace.errors import MedSpaceError
from medspace.hub.channel import MAX_REPLY_ENTRIES, ChannelHub, NodeMissing
from medspace.hub.core import HubCore
from medspace.hub.signers import HubRecorder, user_digest
from medspace.identity import Role, User, public_key_text
from medspace.ledger import Entry, EntryError, EntryType, SignedEntry, utc_timestamp
from medspace.lookup.errors import LookupDenied, RequestRejected
from medspace.lookup.request import LookupQuery, SeenRequests, SignedQuery
from medspace.policy import LookupRequest

DEFAULT_DEADLINE = 2.0
MAX_DEADLINE = 30.0
MAX_ENTRIES = 32
NODE_ENTRY_TYPES = frozenset(
    {
        EntryType.LOOKUP,
        EntryType.BREAK_GLASS,
        EntryType.VIEW,
        EntryType.ALERT,
        EntryType.REVIEW,
        EntryType.POLICY,
    }
)
"""What a node may submit about lookups through the API (answers come over the channel)."""


def _decode(entries: object) -> list[bytes]:
    if not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
        raise RequestRejected(f"entries must be a list of at most {MAX_ENTRIES}")
    try:
        return [base64.b64decode(e, validate=True) for e in entries]
    except (TypeError, ValueError):
        raise RequestRejected("entries must be base64 signed ledger entries") from None


def _check_node_entries(node: str, bodies: Sequence[bytes]) -> None:
    for body in bodies:
        try:
            signed = SignedEntry.from_bytes(body)
        except EntryError as error:
            raise RequestRejected(f"a submitted ledger entry is malformed: {error}") from None
        if signed.entry.type not in NODE_ENTRY_TYPES or signed.entry.actor != node:
            raise RequestRejected(
                "only the clinician's or steward's own node may submit lookup entries "
                "(lookup, break_glass, view, alert, review)"
            )


@dataclass(frozen=True, slots=True)
class LookupRun:
    """An accepted lookup, ready to fan out."""

    signed: SignedQuery
    query: LookupQuery
    delegation: str  # what the nodes get instead of the clinician's bearer token
    requester_key: str
    deadline: float


class LookupHub:
    """The hub's lookup service (one per app)."""

    def __init__(self, core: HubCore, channel: ChannelHub) -> None:
        self._core = core
        self._channel = channel
        self._seen = SeenRequests()
        self._running: set[asyncio.Task[None]] = set()

    # -- checks (run in a worker thread) --------------------------------------------------

    def accept(self, user: User, token: str, body: object) -> LookupRun:
        """Check a lookup before anything is sent; raises `RequestRejected`,
        `PolicyDenied` (ledgered) or `LookupDenied`."""
        core = self._core
        try:
            if not isinstance(body, dict):
                raise RequestRejected("the body must be {request, entries, deadline}")
            signed = SignedQuery.from_json(body.get("request"))
        except RequestRejected:
            # Nothing to decide on, but the attempt is refused AND ledgered all the same.
            core.append([core.hub_signer.sign(_malformed_attempt(user, core.clock()))])
            raise
        query = signed.query
        deadline = body.get("deadline", DEFAULT_DEADLINE)
        if not isinstance(deadline, int | float) or not 0 < deadline <= MAX_DEADLINE:
            raise RequestRejected(
                f"the deadline must be a number of seconds in (0, {MAX_DEADLINE:g}]"
            )
        # The decision comes first, so a non-clinician's attempt is refused AND ledgered.
        # Its entry is appended together with the asking node's entries (one commit).
        decided: list[SignedEntry] = []

        def collect(entries: Sequence[SignedEntry]) -> list[int]:
            decided.extend(entries)
            return []

        decision = core.policy.decide(
            user,
            "lookup",
            LookupRequest(query.purpose, query.justification, requester=query.requester),
            core.context(
                recorder=HubRecorder(collect, core.hub_signer),
                node_policy=core.node_policy(query.requester),
            ),
        )
        now = core.clock()
        try:
            decision.require()
            if user.role is not Role.CLINICIAN or user.name != query.clinician:
                raise LookupDenied("the signed request names another clinician than the caller")
            key = core.registry.public_key(query.requester)
            signed.verify(key)
            query.check_fresh(now)
            self._seen.claim(query.request, now)
            bodies = _decode(body.get("entries", []))
            _check_node_entries(query.requester, bodies)
        except RequestRejected:
            # A forged, stale or replayed request is refused and the refusal ledgered.
            refusal = Entry(
                type=EntryType.LOOKUP,
                actor="hub",
                time=utc_timestamp(now),
                node=query.requester,
                details={
                    "request": query.request,
                    "status": "refused",
                    "reason": "lookup/unverified",
                },
            )
            core.append([*decided, core.hub_signer.sign(refusal)])
            raise
        except MedSpaceError:
            core.append(decided)
            raise
        try:
            core.append([*decided, *(SignedEntry.from_bytes(b) for b in bodies)])
        except MedSpaceError:
            core.append(decided)  # the decision stands; the node's entries were bad
            raise
        delegation = core.users.delegate(token, audience="lookup", binding=query.request, now=now)
        return LookupRun(signed, query, delegation, public_key_text(key), float(deadline))

    def record(self, user: User, body: object) -> int:
        """Append lookup entries a node signed (views, reviews, alerts), submitted by a
        clinician or steward of that node; returns how many were appended."""
        if user.role not in (Role.CLINICIAN, Role.STEWARD) or user.node is None:
            raise LookupDenied(
                "only a clinician or steward of a node may submit that node's lookup entries"
            )
        bodies = _decode(body.get("entries") if isinstance(body, dict) else None)
        _check_node_entries(user.node, bodies)
        return len(self._core.append_node_entries(user.node, bodies))

    # -- fan-out --------------------------------------------------------------------------

    async def stream(self, run: LookupRun) -> AsyncIterator[bytes]:
        """NDJSON lines: one per answer as it arrives, then the closing line. The fan-out
        and its ledger entries run in their own task, so a caller who hangs up early
        does not cost the ledger the answers that were sent."""
        lines: asyncio.Queue[bytes | None] = asyncio.Queue()
        task = asyncio.create_task(self._fan_out(run, lines))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        ended = False
        while not ended and (line := await lines.get()) is not None:
            # Lines that arrived while this one waited leave in the same chunk: one
            # write instead of one per answer when the hub is busy.
            chunk = [line]
            while not lines.empty():
                more = lines.get_nowait()
                if more is None:
                    ended = True
                    break
                chunk.append(more)
            yield b"".join(chunk)

    async def _fan_out(self, run: LookupRun, lines: asyncio.Queue[bytes | None]) -> None:
        core = self._core
        try:
            keys = await core.read(core.registry.key_texts)
            registered = sorted(keys)
            targets = [n for n in self._channel.connected() if n in keys]
            message = {
                "type": "lookup",
                "request": run.signed.to_json(),
                "token": run.delegation,
                "requester_key": run.requester_key,
            }
            jobs = [
                asyncio.create_task(self._ask(n, keys[n], message, run.deadline)) for n in targets
            ]
            answered: list[str] = []
            entries: dict[str, list[bytes]] = {}
            for job in asyncio.as_completed(jobs):
                line, bodies = await job
                if line["status"] != "missing":
                    answered.append(line["node"])
                    entries[line["node"]] = bodies
                lines.put_nowait(_line(line))
            missing = sorted(set(registered) - set(answered))
            closing = Entry(
                type=EntryType.LOOKUP,
                actor="hub",
                time=utc_timestamp(core.clock()),
                details={
                    "request": run.query.request,
                    "purpose": run.query.purpose.value,
                    "status": "partial" if missing else "completed",
                    "count": len(answered),
                    "partial": bool(missing),
                },
            )
            rejected = await core.write(self._append, entries, core.hub_signer.sign(closing))
            lines.put_nowait(
                _line(
                    {
                        "type": "end",
                        "request": run.query.request,
                        "answered": sorted(answered),
                        "missing": missing,
                        "partial": bool(missing),
                        "unrecorded": rejected,
                    }
                )
            )
        finally:
            lines.put_nowait(None)

    async def _ask(
        self, node: str, key: str, message: dict[str, Any], deadline: float
    ) -> tuple[dict[str, Any], list[bytes]]:
        try:
            reply = await self._channel.request(node, message, deadline)
        except NodeMissing as missing:
            return {"type": "answer", "node": node, "status": "missing", "reason": str(missing)}, []
        raw = reply.get("entries", [])
        try:
            if not isinstance(raw, list) or len(raw) > MAX_REPLY_ENTRIES:
                raise ValueError(f"at most {MAX_REPLY_ENTRIES} entries")
            bodies = [base64.b64decode(e, validate=True) for e in raw]
        except (TypeError, ValueError):
            bodies = [b"malformed"]  # refused by `_append`: the node is listed unrecorded
        line: dict[str, Any] = {
            "type": "answer",
            "node": node,
            "status": str(reply.get("status")),
            # The node's signed receipt and its registered key, which the asking node
            # pins on first contact: it checks that this line is what the node sent.
            "receipt": reply.get("receipt"),
            "node_key": key,
        }
        if reply.get("status") == "ok":
            line["answer"] = reply.get("answer")
            if isinstance(reply.get("sealed"), dict):
                line["sealed"] = reply["sealed"]
        else:
            line["reason"] = str(reply.get("reason", "no reason given"))[:500]
        return line, bodies

    def _append(self, entries: dict[str, list[bytes]], closing: SignedEntry) -> list[str]:
        """Append every node's entries and the hub's closing entry in one batch (one
        commit); if the batch is refused, append node by node so one node's bad entries
        do not cost the others'. Returns the nodes whose entries failed the checks."""
        try:
            batch = []
            for node, bodies in sorted(entries.items()):
                for body in bodies:
                    signed = SignedEntry.from_bytes(body)
                    if signed.entry.actor != node:
                        raise EntryError("a node may only submit entries it acted in itself")
                    batch.append(signed)
            self._core.append([*batch, closing])
            return []
        except (MedSpaceError, ValueError):
            pass
        self._core.append([closing])
        rejected = []
        for node, bodies in sorted(entries.items()):
            try:
                self._core.append_node_entries(node, bodies)
            except (MedSpaceError, ValueError):
                rejected.append(node)
        return rejected


def _malformed_attempt(user: User, now: datetime) -> Entry:
    """The hub's entry for a lookup whose body could not be read: who (a digest), from
    which node, refused; nothing of the body."""
    return Entry(
        type=EntryType.LOOKUP,
        actor="hub",
        time=utc_timestamp(now),
        node=user.node,
        artefacts={"user": user_digest(user.name)},
        details={"status": "refused", "reason": "lookup/malformed"},
    )


def _line(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
