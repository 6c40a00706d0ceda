"""One federated query's session with its nodes, as the hub keeps it.

`NodeSession` holds what the hub knows about each node during a query (`NodeRow`: ok,
missing, refused, rejected, ...; `Participant`: the nodes that prepared it) and the
plumbing every step uses: one request to a node on the session (`_ask`), taking the
ledger entries a node sends and appending them a round at a time, leaving a node out
with a reason (`_reject`, ledgered at the end) and the quorum check. The steps
themselves are in `medspace.hub.analytics_secsum` (secure-aggregation rounds, the
regression fit) and `medspace.hub.analytics` (plan, prepare, combine, record).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from typing import Any

from medspace.errors import MedSpaceError
from medspace.hub.channel import MAX_REPLY_ENTRIES, ChannelHub, NodeMissing
from medspace.hub.core import HubCore
from medspace.hub.errors import TaskError
from medspace.ledger import Entry, EntryType, SignedEntry, utc_timestamp
from medspace.policy import Project, TaskRequest

REQUEST_TYPE = "analytics"
MIN_NODES = 2


class QueryRefused(TaskError):
    """The query cannot give a result (too few nodes answered, a node dropped mid-fit,
    the DP budget is spent); the message says why and what to do, `code` (ledgered with
    the refusal) which kind of refusal it was."""

    http_status = 409
    exit_code = 8

    def __init__(self, message: str, *, code: str = "query/refused") -> None:
        super().__init__(message)
        self.code = code


@dataclass
class NodeRow:
    """What happened at one node, for the answer and the report."""

    node: str
    status: str  # ok, refused, missing, rejected, error, not-approved, denied, ...
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The row as JSON (no reason key when there is none)."""
        row: dict[str, Any] = {"node": self.node, "status": self.status}
        if self.reason is not None:
            row["reason"] = self.reason
        return row


@dataclass
class Participant:
    """A node that prepared the query: its task, its minimum cell size, and what it
    suppressed or refused."""

    node: str
    task: TaskRequest
    min_cell_size: int = 0
    suppressed: list[str | None] = field(default_factory=list)
    refusals: dict[str, str] = field(default_factory=dict)


class NodeSession:
    """The nodes' state in one query session and the requests and ledger appends it
    makes; `QueryRun` (medspace.hub.analytics) drives the steps."""

    project: Project  # set by the query once it has read the project's state

    def __init__(self, core: HubCore, channel: ChannelHub) -> None:
        self.core = core
        self.channel = channel
        self.task_id = str(uuid.uuid4())
        self.rows: dict[str, NodeRow] = {}
        self.participants: dict[str, Participant] = {}
        self.ledger_ids: list[int] = []
        self.timeout = float(core.config.task_timeout)
        self.rejections: dict[str, str] = {}
        self._pending: list[tuple[str, list[SignedEntry]]] = []
        self.contributors: list[str] = []

    def _session(self) -> str:
        return self.task_id

    def _answered(self) -> list[str]:
        return [n for n in self.participants if self.rows[n].status == "ok"]

    def _quorum(self) -> int:
        return max(MIN_NODES, self.project.answer_quorum())

    def _require_quorum(self, what: str) -> None:
        answered = len(self._answered())
        need = self._quorum()
        if answered < need:
            raise QueryRefused(
                f"only {answered} node(s) {what}; project {self.project.id} needs at least "
                f"{need} (a sum over fewer would disclose a hospital's own figures). See the "
                "per-node reasons, fix them and run the query again",
                code="query/quorum",
            )

    def _min_cell_size(self) -> int:
        sizes = [self.participants[n].min_cell_size for n in self.participants]
        return max([self.project.disclosure.min_cell_size, *sizes])

    def _rows(self) -> list[dict[str, Any]]:
        return [self.rows[n].to_json() for n in self.project.nodes if n in self.rows]

    def _reject(self, node: str, reason: str, code: str = "secagg-malformed") -> None:
        """Leave `node` out and report why; the rejection is ledgered at the end."""
        self.rows[node] = NodeRow(node, "rejected", reason)
        self.rejections[node] = code

    async def _ask(
        self,
        node: str,
        body: dict[str, Any],
        *,
        ok_status: str = "ok",
        keep_row: bool = False,
    ) -> dict[str, Any] | None:
        """One request to `node` in this session; None when it is missing, refused or
        sent entries that do not verify (its row says so, unless `keep_row`: a node
        whose masked input is in the sum stays a contributor whatever it does later)."""
        message = {"type": REQUEST_TYPE, "session": self._session(), **body}
        try:
            reply = await self.channel.request(node, message, self.timeout)
        except NodeMissing as missing:
            if not keep_row:
                self.rows[node] = NodeRow(node, "missing", str(missing))
            return None
        if not await self._take_entries(node, reply.get("entries", [])):
            return None
        status = reply.get("status")
        if status != ok_status:
            if not keep_row:
                label = status if status in ("refused", "denied") else "error"
                reason = str(reply.get("reason", "no reason"))[:500]
                self.rows[node] = NodeRow(node, label, reason)
            return None
        return reply

    async def _take_entries(self, node: str, entries: object) -> bool:
        """Check that `node`'s ledger entries parse and name it as actor; they are
        appended (signatures checked) with the round's others by `_flush_entries`."""
        try:
            if not isinstance(entries, list) or len(entries) > MAX_REPLY_ENTRIES:
                raise TypeError(f"entries must be a list of at most {MAX_REPLY_ENTRIES}")
            signed = [SignedEntry.from_bytes(base64.b64decode(e, validate=True)) for e in entries]
            if any(s.entry.actor != node for s in signed):
                raise TypeError("a node may only submit entries it acted in itself")
        except (MedSpaceError, ValueError, TypeError):
            self._reject(node, "node sent ledger entries that failed verification", "bad-entries")
            return False
        if signed:
            self._pending.append((node, signed))
        return True

    async def _flush_entries(self) -> None:
        """Append the nodes' entries of a round in one batch (one transaction); if the
        batch fails, node by node, rejecting a node whose signatures do not verify."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        batch = [entry for _node, entries in pending for entry in entries]
        try:
            self.ledger_ids.extend(await self.core.write(self.core.append, batch))
            return
        except MedSpaceError:
            pass
        for node, entries in pending:
            try:
                self.ledger_ids.extend(await self.core.write(self.core.append, entries))
            except MedSpaceError:
                self._reject(
                    node, "node sent ledger entries that failed verification", "bad-entries"
                )

    async def _ledger_rejections(self) -> None:
        """One hub entry per node whose data was rejected (reason code, no content)."""
        for node, code in sorted(self.rejections.items()):
            await self._append(
                Entry(
                    type=EntryType.COMPUTE,
                    actor="hub",
                    time=utc_timestamp(),
                    node=node,
                    project=self.project.id,
                    details={
                        "task": self.task_id,
                        "status": "rejected",
                        "reason": code,
                        "method": "secagg",
                    },
                )
            )

    async def _append(self, entry: Entry) -> None:
        ids = await self.core.write(self.core.append, [self.core.hub_signer.sign(entry)])
        self.ledger_ids.extend(ids)


def refusals_ok(refusals: object) -> bool:
    """A node's statistic refusals are well-formed: statistic id -> reason code."""
    return (
        isinstance(refusals, dict)
        and len(refusals) <= 100
        and all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 64
            for k, v in refusals.items()
        )
    )


__all__ = [
    "MIN_NODES",
    "REQUEST_TYPE",
    "NodeRow",
    "NodeSession",
    "Participant",
    "QueryRefused",
    "refusals_ok",
]
