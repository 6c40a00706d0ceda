"""Federated queries at the hub: plan, prepare, mask, unmask, combine, record.

One loop runs a query (`QueryRun.run`), the way the count task does but with secure
aggregation in the middle, so the hub only ever holds the SUM of the nodes' vectors:

1. plan: `decide("task.submit")` per approving node, for every computation kind the spec
   asks for; nodes not connected, or that have not announced an agreement key, are
   reported missing;
2. prepare: each node re-checks `task.run` itself, drops opted-out patients, runs the
   differencing audit (unless the project uses DP), computes its local aggregate (or
   builds its design matrix for a regression) and keeps it for this session;
3. mask (secure-aggregation round 1): each prepared node returns its vector masked with
   pairwise masks shared with the other participants, plus its suppression flags;
4. unmask (round 2): the survivors reveal what removes the masks of everyone who did
   (and did not) answer; the hub reconstructs the sum;
5. combine, add DP noise when the project uses it, ledger the result's hash.

A regression repeats 3-4 once per Newton iteration on the same participants; a node
that drops mid-fit stops the fit (mixing cohorts silently would give wrong numbers).
Fewer answering nodes than the project's quorum (never fewer than 2: a sum over one node
is that node's data) refuse the query; some missing nodes above the quorum make the
result *partial*, with the missing nodes listed. Malformed vectors and shares are
rejected, reported and ledgered.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from medspace.errors import MedSpaceError
from medspace.hub.channel import ChannelHub, NodeMissing
from medspace.hub.core import HubCore
from medspace.hub.errors import TaskError
from medspace.identity import User
from medspace.ledger import Entry, EntryType, SignedEntry, utc_timestamp
from medspace.policy import PolicyDenied, TaskRequest, Verdict

REQUEST_TYPE = "analytics"
MIN_NODES = 2
_BACKGROUND: set[asyncio.Task[None]] = set()


class QueryRefused(TaskError):
    """The query cannot give a result (too few nodes answered, a node dropped mid-fit,
    the DP budget is spent); the message says why and what to do."""

    http_status = 409
    exit_code = 8


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
class _Participant:
    node: str
    task: TaskRequest
    min_cell_size: int = 0
    suppressed: list[str | None] = field(default_factory=list)
    refusals: dict[str, str] = field(default_factory=dict)


class QueryRun:
    """One federated query from one researcher; `run()` does every step."""

    def __init__(
        self,
        core: HubCore,
        channel: ChannelHub,
        user: User,
        token: str,
        project_id: str,
        spec_data: Any,
        epsilon: Decimal | None = None,
        signed: Sequence[SignedEntry] = (),
    ) -> None:
        self.core = core
        self.signed = signed
        self.stated_epsilon = epsilon
        self.channel = channel
        self.user = user
        self.token = token
        self.project_id = project_id
        self.spec_data = spec_data
        self.task_id = str(uuid.uuid4())
        self.rows: dict[str, NodeRow] = {}
        self.participants: dict[str, _Participant] = {}
        self.ledger_ids: list[int] = []
        self.timeout = float(core.config.task_timeout)
        self.dp_info: dict[str, Any] | None = None
        self.rejections: dict[str, str] = {}
        self._pending: list[tuple[str, list[SignedEntry]]] = []
        self.contributors: list[str] = []

    # -- the loop ---------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        """Plan, prepare, aggregate, combine, record; the answer as JSON. Raises
        `TaskError`/`SpecError` before anything is sent for a malformed request."""
        from medspace.analytics import QuerySpec

        state = await asyncio.to_thread(self.core.book.get, self.project_id)
        self.state = state
        self.project = state.project
        self.spec = QuerySpec.parse(self.spec_data)
        self.spec_json = self.spec.model_dump(mode="json")
        self.spec_digest = self.spec.digest()
        self.dp_total = self.project.disclosure.dp_epsilon
        self.epsilon: Decimal | None = None
        if self.dp_total is not None:
            from medspace.analytics.dp import query_epsilon

            self.epsilon = query_epsilon(self.stated_epsilon, self.dp_total)
        elif self.stated_epsilon is not None:
            raise TaskError(
                f"project {self.project.id} does not use differential privacy; ask without "
                "an epsilon"
            )
        planned = await self._plan()
        try:
            await self._prepare(planned)
            self._require_quorum("prepared the query")
            result = await self._aggregate()
            answer = await self._finish(result)
        except QueryRefused as refusal:
            self._close_later("refused")
            return await self._refused(str(refusal))
        self._close_later("completed")
        return answer

    # -- 1. plan ----------------------------------------------------------------------

    async def _plan(self) -> list[tuple[str, TaskRequest]]:
        kinds = list(self.spec.computations())
        variables = list(self.spec.data_fields())
        if self.dp_total is not None:
            from medspace.analytics.dp import check_supported

            check_supported(self.spec)
        outside = sorted(set(kinds) - set(self.project.computations))
        if outside:
            raise TaskError(
                f"project {self.project.id} does not allow the computation "
                f"{', '.join(outside)}; file a project that does, or ask without it"
            )
        tasks: list[tuple[str, TaskRequest]] = []
        for node in self.project.nodes:
            verdict = self.state.verdict(node)
            if verdict is None:
                self.rows[node] = NodeRow(node, "not-approved", "no steward decision yet")
                continue
            if verdict.verdict is not Verdict.APPROVED or verdict.contract_hash is None:
                self.rows[node] = NodeRow(node, verdict.verdict.value, "not tasked")
                continue
            task = TaskRequest(
                project_id=self.project.id,
                node=node,
                computation=kinds[0],
                kinds=tuple(kinds[1:]),
                variables=tuple(variables),
                contract_hash=verdict.contract_hash,
                epsilon=self.epsilon,
            )
            tasks.append((node, task))
        spent = await self._epsilon_spent()
        # The researcher signs each node's task entry with their own key: a dry run
        # collects the drafts, and without signatures nothing is sent or ledgered.
        acts = await asyncio.to_thread(self.core.user_acts, self.user, self.signed)
        for _node, task in tasks:
            await asyncio.to_thread(
                acts.plan, "task.submit", self.state, task=task, epsilon_spent=spent
            )
        await asyncio.to_thread(acts.require)
        planned: list[tuple[str, TaskRequest]] = []
        for node, task in tasks:
            try:
                await asyncio.to_thread(
                    acts.decide, "task.submit", self.state, task=task, epsilon_spent=spent
                )
            except PolicyDenied as denied:  # ledgered by the hub as its observation
                self.rows[node] = NodeRow(node, "denied", str(denied))
                continue
            if node not in self.channel.connected():
                self.rows[node] = NodeRow(node, "missing", f"node {node} is not connected")
                continue
            if self.channel.announcement(node) is None:
                self.rows[node] = NodeRow(
                    node, "missing", f"node {node} has not announced its agreement key"
                )
                continue
            planned.append((node, task))
        if not planned and not any(r.status == "denied" for r in self.rows.values()):
            raise TaskError(f"no approving node of project {self.project.id} can be asked now")
        return planned

    # -- 2. prepare -------------------------------------------------------------------

    async def _prepare(self, planned: list[tuple[str, TaskRequest]]) -> None:
        state_json = self.state.model_dump(mode="json")

        async def one(node: str, task: TaskRequest) -> None:
            body = {
                "op": "prepare",
                "task": task.model_dump(mode="json"),
                "project": state_json,
                "token": self.token,
                # Channel bodies are canonical JSON without floats: the spec travels
                # as its JSON text, which the node parses and checks itself.
                "spec": self.spec.to_json(),
            }
            reply = await self._ask(node, body)
            if reply is None:
                return
            k = reply.get("min_cell_size")
            if type(k) is not int or k < 1:
                self._reject(node, "node sent no minimum cell size")
                return
            refusals = reply.get("refusals", {})
            if not _refusals_ok(refusals):
                self._reject(node, "node sent malformed statistic refusals")
                return
            self.participants[node] = _Participant(node, task, k, refusals=refusals)
            self.rows[node] = NodeRow(node, "ok")

        await asyncio.gather(*(one(node, task) for node, task in planned))
        await self._flush_entries()

    # -- 3 + 4. secure aggregation rounds ---------------------------------------------

    async def _aggregate(self) -> Any:
        from medspace.analytics.combine import combine
        from medspace.analytics.layout import layout

        cells = layout(self.spec)
        result = None
        if len(cells) > 0:
            total = await self._secure_sum(0, {"part": "local"}, len(cells), suppression=True)
            if self.dp_total is not None:
                total = await self._release(cells, total)
            contributors = self.contributors
            suppressed = {n: self.participants[n].suppressed for n in contributors}
            refusals = {n: self.participants[n].refusals for n in contributors}
            result = combine(
                self.spec, cells, total, suppressed, self._min_cell_size(), refusals=refusals
            )
        fits = [(s, await self._fit(s)) for s in self._regressions()]
        return _with_regressions(result, self.spec, self.contributors, self._min_cell_size(), fits)

    async def _release(self, cells: Any, total: list[float]) -> list[float]:
        """Charge the project's budget (atomically; refused when it would overrun), then
        add OpenDP noise to the summed vector."""
        from medspace.analytics.budget import Budget, BudgetExceeded
        from medspace.analytics.dp import release
        from medspace.analytics.report import PrivacyReport

        assert self.dp_total is not None and self.epsilon is not None
        budget = Budget(self.core.engine)
        try:
            spend = await asyncio.to_thread(
                budget.spend, self.project.id, self.task_id, self.epsilon, self.dp_total
            )
        except BudgetExceeded as exceeded:
            raise QueryRefused(str(exceeded)) from None
        noisy, dp_release = await asyncio.to_thread(release, self.spec, cells, total, self.epsilon)
        self.dp_info = PrivacyReport.of(dp_release, spend).model_dump(mode="json")
        return noisy

    async def _fit(self, statistic: Any) -> Any:
        """Newton-Raphson with one secure-aggregation round per iteration on a fixed set
        of nodes; the fitted statistic's result (coefficients, SEs, p-values)."""
        from medspace.analytics.regression import (
            logistic_result,
            newton_step,
            parameter_names,
            regression_layout,
        )

        p = len(parameter_names(statistic))
        length = regression_layout(p)
        beta = [0.0] * p
        fitted = set(self._answered())
        converged = False
        total: list[float] = []
        iterations = 0
        for iteration in range(1, statistic.max_iterations + 1):
            part = {"part": statistic.id, "beta": [repr(b) for b in beta]}
            total = await self._secure_sum(iteration, part, length, suppression=False)
            iterations = iteration
            dropped = sorted(fitted - set(self._answered()))
            if dropped:
                raise QueryRefused(
                    f"node {', '.join(dropped)} dropped out during the fit of {statistic.id}; "
                    "a fit over a changing set of hospitals would be wrong, so none is "
                    "reported: run the query again"
                )
            try:
                beta, converged = newton_step(beta, total, tolerance=statistic.tolerance)
            except MedSpaceError as error:
                raise QueryRefused(f"{statistic.id}: {error}") from None
            if converged:
                break
        if not converged:
            raise QueryRefused(
                f"{statistic.id} did not converge in {statistic.max_iterations} iterations; "
                "raise max_iterations or check the covariates (separation?)"
            )
        return logistic_result(statistic, beta, total, iterations=iterations, converged=True)

    async def _secure_sum(
        self, round_no: int, part: dict[str, Any], length: int, *, suppression: bool
    ) -> list[float]:
        from medspace.analytics.secagg import (
            Aggregator,
            SecAggError,
            decode_vector,
            default_threshold,
        )

        members = sorted(self._answered())
        t = default_threshold(len(members))
        peers = {n: self.channel.announcement(n) for n in members}
        aggregator = Aggregator(members, t, length, self._session(), round_no)

        async def mask(node: str) -> None:
            body = {
                "op": "mask",
                "round": round_no,
                "participants": members,
                "threshold": t,
                "peers": peers,
                **part,
            }
            reply = await self._ask(node, body, ok_status="ok")
            if reply is None:
                return
            try:
                aggregator.add_masked(node, reply.get("masked", {}))
            except SecAggError as error:
                self._reject(node, f"masked vector rejected: {error}")
                return
            if suppression:
                flags = reply.get("suppressed")
                if not isinstance(flags, list) or not _flags_ok(flags, length):
                    self._reject(node, "suppression flags do not match the query's cells")
                    return
                self.participants[node].suppressed = flags

        await asyncio.gather(*(mask(node) for node in members))
        await self._flush_entries()
        survivors = sorted(self._answered())
        self._require_quorum("sent a masked vector")
        dropped = [n for n in members if n not in survivors]
        try:
            requests = aggregator.unmask_requests(dropped)
        except SecAggError as error:
            raise QueryRefused(f"secure aggregation cannot finish: {error}") from None
        # Whose data is in the sum from here on: their suppression flags count.
        self.contributors = list(aggregator.survivors)

        async def unmask(node: str) -> None:
            body = {"op": "unmask", "round": round_no, "request": requests[node]}
            reply = await self._ask(node, body, keep_row=True)
            if reply is None:
                return
            try:
                aggregator.add_unmask(node, reply.get("unmask", {}))
            except SecAggError as error:
                # Its own vector is in the sum (its masks are rebuilt from the others'
                # shares); only its answer for the others is left out.
                self.rejections[node] = "secagg-bad-share"
                self.rows[node] = NodeRow(node, "ok", f"unmasking share rejected: {error}")

        await asyncio.gather(*(unmask(node) for node in survivors))
        await self._flush_entries()
        try:
            return list(decode_vector(aggregator.total()))
        except SecAggError as error:
            for node in getattr(error, "nodes", ()):
                self._reject(node, f"inconsistent unmasking data: {error}", "secagg-inconsistent")
            raise QueryRefused(
                f"the masks could not be removed ({error}); the query gives no result"
            ) from None

    # -- 5. combine, DP, record ---------------------------------------------------------

    async def _finish(self, result: Any) -> dict[str, Any]:
        await self._flush_entries()
        await self._ledger_rejections()
        result_json = _to_json(result)
        missing = sorted(
            r.node for r in self.rows.values() if r.status in {"missing", "rejected", "error"}
        )
        answered = sorted(self.contributors)
        partial = bool(missing)
        digest = result_digest(result_json)
        details: dict[str, Any] = {
            "task": self.task_id,
            "statistic": "query",
            "method": "secagg",
            "status": "partial" if partial else "completed",
            "count": len(answered),
            "partial": partial,
        }
        if all(n[:1].isalpha() for n in answered):
            details["nodes"] = answered
        if self.epsilon is not None and self.dp_info is not None:
            details["epsilon_micros"] = int(self.epsilon * 1_000_000)
        await self._append(
            Entry(
                type=EntryType.RESULT,
                actor="hub",
                time=utc_timestamp(),
                project=self.project.id,
                artefacts={"result": f"sha256:{digest}", "query": f"sha256:{self.spec_digest}"},
                details=details,
            )
        )
        return self._answer("partial" if partial else "completed", result_json, missing)

    async def _refused(self, reason: str) -> dict[str, Any]:
        await self._flush_entries()
        await self._ledger_rejections()
        await self._append(
            Entry(
                type=EntryType.RESULT,
                actor="hub",
                time=utc_timestamp(),
                project=self.project.id,
                artefacts={"query": f"sha256:{self.spec_digest}"},
                details={
                    "task": self.task_id,
                    "statistic": "query",
                    "status": "refused",
                    "count": len(self._answered()),
                },
            )
        )
        missing = sorted(r.node for r in self.rows.values() if r.status == "missing")
        answer = self._answer("refused", None, missing)
        answer["reason"] = reason
        return answer

    def _answer(self, status: str, result: Any, missing: list[str]) -> dict[str, Any]:
        return {
            "project": self.project.id,
            "project_title": self.project.title,
            "task": self.task_id,
            "status": status,
            "partial": status == "partial",
            "missing": missing,
            "nodes": self._rows(),
            "result": result,
            "spec": self.spec_json,
            "dp": self.dp_info,
            "quorum": self._quorum(),
            "min_cell_size": self._min_cell_size(),
            "ledger_entries": self.ledger_ids,
        }

    async def _epsilon_spent(self) -> Decimal:
        if self.dp_total is None:
            return Decimal(0)
        from medspace.analytics.budget import Budget

        return await asyncio.to_thread(Budget(self.core.engine).spent, self.project.id)

    def _close_later(self, outcome: str) -> None:
        """Close the session at the nodes without making the researcher wait for it."""
        job = asyncio.get_running_loop().create_task(self._close(outcome))
        _BACKGROUND.add(job)
        job.add_done_callback(_BACKGROUND.discard)

    async def _close(self, outcome: str) -> None:
        """Tell every prepared node the session is over (they drop its state)."""

        async def one(node: str) -> None:
            reply = await self._ask(node, {"op": "close", "outcome": outcome}, keep_row=True)
            del reply

        await asyncio.gather(*(one(n) for n in self.participants))

    # -- plumbing ---------------------------------------------------------------------

    def _session(self) -> str:
        return self.task_id

    def _answered(self) -> list[str]:
        return [n for n in self.participants if self.rows[n].status == "ok"]

    def _regressions(self) -> list[Any]:
        return [s for s in self.spec.statistics if s.kind == "logistic"]

    def _quorum(self) -> int:
        return max(MIN_NODES, self.project.answer_quorum())

    def _require_quorum(self, what: str) -> None:
        answered = len(self._answered())
        need = self._quorum()
        if answered < need:
            raise QueryRefused(
                f"only {answered} node(s) {what}; project {self.project.id} needs at least "
                f"{need} (a sum over fewer would disclose a hospital's own figures). See the "
                "per-node reasons, fix them and run the query again"
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
            if not isinstance(entries, list):
                raise TypeError("entries must be a list")
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
            self.ledger_ids.extend(await asyncio.to_thread(self.core.append, batch))
            return
        except MedSpaceError:
            pass
        for node, entries in pending:
            try:
                self.ledger_ids.extend(await asyncio.to_thread(self.core.append, entries))
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
        ids = await asyncio.to_thread(self.core.append, [self.core.hub_signer.sign(entry)])
        self.ledger_ids.extend(ids)


def _flags_ok(flags: object, length: int) -> bool:
    return (
        isinstance(flags, list)
        and len(flags) == length
        and all(f is None or (isinstance(f, str) and 0 < len(f) <= 64) for f in flags)
    )


def result_digest(result_json: Any) -> str:
    """SHA-256 of a result's JSON with sorted keys and no spaces (results hold floats,
    which the ledger's canonical JSON refuses): what the hub's result entry records."""
    text = json.dumps(result_json, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _refusals_ok(refusals: object) -> bool:
    return (
        isinstance(refusals, dict)
        and len(refusals) <= 100
        and all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 64
            for k, v in refusals.items()
        )
    )


def _to_json(result: Any) -> Any:
    if result is None:
        return None
    if hasattr(result, "model_dump"):
        return result.model_dump(mode="json")
    return result


def _with_regressions(
    result: Any,
    spec: Any,
    nodes: Sequence[str],
    min_cell_size: int,
    fits: list[tuple[Any, Any]],
) -> Any:
    """The combined result with each fitted regression in the spec's order."""
    from medspace.analytics import QueryResult

    if not fits:
        return result
    if result is None:
        result = QueryResult(
            spec_digest=spec.digest(),
            title=spec.title,
            min_cell_size=min_cell_size,
            nodes=tuple(sorted(nodes)),
            statistics=(),
        )
    fitted = {stat.id: fit for stat, fit in fits}
    ordered = []
    for stat in spec.statistics:
        if stat.id in fitted:
            ordered.append(fitted[stat.id])
        else:
            ordered.extend(s for s in result.statistics if s.id == stat.id)
    return result.model_copy(update={"statistics": tuple(ordered)})


async def run_query(
    core: HubCore,
    channel: ChannelHub,
    user: User,
    token: str,
    project_id: str,
    spec: Any,
    epsilon: Decimal | None = None,
    signed: Sequence[SignedEntry] = (),
) -> dict[str, Any]:
    """Run one federated query of `project_id` (see the module docstring). Without the
    researcher's signed task entries this raises `SignatureRequired` with the drafts."""
    run = QueryRun(core, channel, user, token, project_id, spec, epsilon, signed)
    return await run.run()


__all__ = ["QueryRefused", "QueryRun", "result_digest", "run_query"]
