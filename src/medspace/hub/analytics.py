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

This module holds the loop and steps 1, 2 and 5; the secure-aggregation rounds and the
regression fit are in `medspace.hub.analytics_secsum`, and the per-node session state and
plumbing (requests, ledger entries, rejections, quorum) in `medspace.hub.analytics_session`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from medspace.hub.analytics_secsum import SecureAggregation, check_counts, with_regressions
from medspace.hub.analytics_session import NodeRow, Participant, QueryRefused, refusals_ok
from medspace.hub.channel import ChannelHub
from medspace.hub.core import HubCore
from medspace.hub.errors import TaskError
from medspace.identity import User
from medspace.ledger import Entry, EntryType, SignedEntry, utc_timestamp
from medspace.policy import PolicyDenied, TaskRequest, Verdict

_BACKGROUND: set[asyncio.Task[None]] = set()


DELEGATION_REUSE_S = 240.0
"""Seconds a session's delegation is used again (it lives `DELEGATION_TTL`, 10 min)."""


class QueryRun(SecureAggregation):
    """One federated query from one researcher; `run()` does every step."""

    keep = False
    """An analysis session's opening (`medspace.hub.analytics_sessions`): the task covers
    every variable of the spec and the nodes keep the cohort after the answer."""

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
        super().__init__(core, channel)
        self.signed = signed
        self._delegated: tuple[str, float, str] | None = None  # (bearer, made at, delegation)
        self.stated_epsilon = epsilon
        self.user = user
        self.token = token
        self.project_id = project_id
        self.spec_data = spec_data
        self.dp_info: dict[str, Any] | None = None

    def _delegation(self) -> str:
        """What the nodes get instead of the researcher's bearer token: a delegation for
        this query or session only (`medspace.identity.tokens`). A session's statistics
        share one while the researcher's token is the same and it is younger than
        `DELEGATION_REUSE_S` (each node checks its signature once, not per statistic);
        the endpoint resolved the bearer token, revocation included, for every request."""
        now = time.monotonic()
        held = self._delegated
        if held is not None and held[0] == self.token and now - held[1] < DELEGATION_REUSE_S:
            return held[2]
        made = self.core.users.delegate(self.token, audience="analytics", binding=self._session())
        self._delegated = (self.token, now, made)
        return made

    # -- the loop ---------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        """Plan, prepare, aggregate, combine, record; the answer as JSON. Raises
        `TaskError`/`SpecError` before anything is sent for a malformed request."""
        from medspace.analytics import QuerySpec
        from medspace.analytics.spec import counted_sums

        state = await self.core.read(self.core.book.get, self.project_id)
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
        else:
            counted = counted_sums(self.spec)  # the nodes refuse it too
            if counted is not None:
                raise TaskError(counted)
        if self.keep and self.dp_total is not None:
            raise TaskError(
                f"project {self.project.id} uses differential privacy: analysis sessions are "
                "not offered there (each statistic would spend budget); run one query at a time"
            )
        planned = await self._plan()
        try:
            await self._prepare(planned)
            self._require_quorum("prepared the query")
            result = await self._aggregate()
            answer = await self._finish(result)
        except QueryRefused as refusal:
            self._close_later("refused")
            return await self._refused(str(refusal), refusal.code)
        if not self.keep:
            self._close_later("completed")
        return answer

    # -- 1. plan ----------------------------------------------------------------------

    async def _plan(self) -> list[tuple[str, TaskRequest]]:
        kinds = list(self.spec.computations())
        variables = list(self.spec.data_fields(every_variable=self.keep))
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
        delegation = self._delegation()

        async def one(node: str, task: TaskRequest) -> None:
            body: dict[str, Any] = {
                "op": "prepare",
                "task": task.model_dump(mode="json"),
                "project": state_json,
                "token": delegation,
                # Channel bodies are canonical JSON without floats: the spec travels
                # as its JSON text, which the node parses and checks itself.
                "spec": self.spec.to_json(),
            }
            if self.keep:
                body["keep"] = True
            reply = await self._ask(node, body)
            if reply is None:
                return
            k = reply.get("min_cell_size")
            if type(k) is not int or k < 1:
                self._reject(node, "node sent no minimum cell size")
                return
            refusals = reply.get("refusals", {})
            if not refusals_ok(refusals):
                self._reject(node, "node sent malformed statistic refusals")
                return
            self.participants[node] = Participant(node, task, k, refusals=refusals)
            self.rows[node] = NodeRow(node, "ok")

        await asyncio.gather(*(one(node, task) for node, task in planned))
        await self._flush_entries()

    # -- 3 + 4. secure sums (analytics_secsum), DP noise on them ----------------------

    async def _aggregate(self) -> Any:
        from medspace.analytics.combine import combine
        from medspace.analytics.layout import layout

        cells = layout(self.spec)
        result = None
        if len(cells) > 0:
            # Under DP the hub charges before round 0, as each node does when it
            # contributes to it: a query refused after that costs both the same.
            spend = await self._spend() if self.dp_total is not None else None
            total = await self._secure_sum(0, {"part": "local"}, len(cells), suppression=True)
            check_counts(cells, total)
            if spend is not None:
                total = await self._release(cells, total, spend)
            contributors = self.contributors
            suppressed = {n: self.participants[n].suppressed for n in contributors}
            refusals = {n: self.participants[n].refusals for n in contributors}
            result = combine(
                self.spec, cells, total, suppressed, self._min_cell_size(), refusals=refusals
            )
        fits = [(s, await self._fit(s)) for s in self._regressions()]
        return with_regressions(result, self.spec, self.contributors, self._min_cell_size(), fits)

    async def _spend(self) -> Any:
        """Charge the project's budget (atomically; refused when it would overrun)."""
        from medspace.analytics.budget import Budget, BudgetExceeded

        assert self.dp_total is not None and self.epsilon is not None
        budget = Budget(self.core.engine)
        try:
            return await asyncio.to_thread(
                budget.spend, self.project.id, self.task_id, self.epsilon, self.dp_total
            )
        except BudgetExceeded as exceeded:
            raise QueryRefused(str(exceeded), code="dp-budget") from None

    async def _release(self, cells: Any, total: list[float], spend: Any) -> list[float]:
        """Add OpenDP noise to the summed vector (the budget is charged already)."""
        from medspace.analytics.dp import release
        from medspace.analytics.report import PrivacyReport

        assert self.epsilon is not None
        noisy, dp_release = await asyncio.to_thread(release, self.spec, cells, total, self.epsilon)
        self.dp_info = PrivacyReport.of(dp_release, spend).model_dump(mode="json")
        return noisy

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

    async def _refused(self, reason: str, code: str) -> dict[str, Any]:
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
                    "reason": code,
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

    # -- helpers ----------------------------------------------------------------------

    def _regressions(self) -> list[Any]:
        return [s for s in self.spec.statistics if s.kind == "logistic"]


def result_digest(result_json: Any) -> str:
    """SHA-256 of a result's JSON with sorted keys and no spaces (results hold floats,
    which the ledger's canonical JSON refuses): what the hub's result entry records."""
    text = json.dumps(result_json, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _to_json(result: Any) -> Any:
    if result is None:
        return None
    if hasattr(result, "model_dump"):
        return result.model_dump(mode="json")
    return result


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
