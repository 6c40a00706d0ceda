"""Analysis sessions: a cohort selected once, then statistic after statistic.

DataSHIELD's researchers assign a table once and then call `ds.mean`, `ds.table`, ...
many times; a one-shot query pays for its cohort, its signed task and its differencing
audit every time. A session pays once:

1. open (`POST /projects/{id}/sessions`, signed like a query): the hub runs the query
   (`QueryRun` with `keep`): `task.submit` per node, signed by the researcher, for the
   spec's statistic kinds and *every* variable it defines; each node checks it, selects
   the cohort, runs the differencing audit and keeps the cohort's features in memory
   (`FeatureFrame`). The opening statistics are answered at once;
2. ask (`POST /projects/{id}/sessions/{session}/statistics`): further statistics over the
   same cohort and variables, of the kinds the opening asked for, no regression. The hub
   decides `task.ask` for every node still in the session (its own ledger entries: a
   revocation, expiry or withdrawn approval stops the session here), then runs one
   secure-aggregation exchange whose round-1 request carries the statistic: each node
   checks the owner's token, re-decides `task.run`, computes from memory with the same
   disclosure control and masks it. Combined and ledgered like a query's result;
3. close (`DELETE ...`), or after `SESSION_IDLE` seconds unused, or `SESSION_MAX_AGE`
   after it opened: the nodes drop the cohort.

Only the researcher who opened a session can use it; to anyone else it does not exist.
DP projects get no sessions (each statistic would spend budget the opening did not
sign for). Sessions live in the hub's memory: a hub restart ends them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from medspace.errors import NotFoundError
from medspace.hub.analytics import QueryRun
from medspace.hub.analytics_secsum import HOSPITALS_CHANGED, check_counts
from medspace.hub.analytics_session import NodeRow, QueryRefused
from medspace.hub.channel import ChannelHub
from medspace.hub.core import HubCore
from medspace.hub.errors import TaskError
from medspace.hub.signers import HUB_PRINCIPAL, hub_observation
from medspace.identity import User
from medspace.ledger import SignedEntry
from medspace.policy import MemoryRecorder, TaskRequest

SESSION_IDLE = 540.0  # seconds; the nodes keep theirs 600 s after the last use
SESSION_MAX_AGE = 3540.0  # the nodes' limit is 3600 s after the opening
MAX_SESSIONS_PER_USER = 4
ASK_ROUNDS = 1000  # asks use rounds 1001, 1002, ...; a query's rounds are 0 to 100


class SessionNotFound(TaskError, NotFoundError):
    """No open analysis session of yours by that id (closed, expired, or someone else's)."""

    http_status = 404


class AnalysisSession(QueryRun):
    """An opened query whose nodes keep the cohort; `ask` answers further statistics."""

    keep = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lock = asyncio.Lock()
        self.opened = self.used = time.monotonic()
        self.asks = 0
        self.spec_opened: Any = None  # the opening spec (set once it answered)
        self.ended = False  # its hospitals changed: no further statistic can be answered

    def expired(self, now: float) -> bool:
        """Unused for `SESSION_IDLE` seconds, open for `SESSION_MAX_AGE`, or ended."""
        return self.ended or now - self.used > SESSION_IDLE or now - self.opened > SESSION_MAX_AGE

    def _answer(self, status: str, result: Any, missing: list[str]) -> dict[str, Any]:
        answer = super()._answer(status, result, missing)
        answer["session"] = {
            "id": self.task_id,
            "asks": self.asks,
            "idle_timeout_s": SESSION_IDLE,
            # an opening that was refused opened nothing; an ask refused for its own
            # reasons leaves the session open, unless its hospitals changed
            "open": not self.ended and (self.spec_opened is not None or status != "refused"),
        }
        return answer

    async def ask(self, user: User, token: str, statistics: object) -> dict[str, Any]:
        """Answer further statistics (JSON list) over the session's cohort for its owner
        `user` (as they are now); the answer is a query's (status, nodes, result, ledger
        entries). Raises `TaskError` for a list the session cannot answer."""
        from medspace.analytics.combine import combine
        from medspace.analytics.layout import layout

        async with self.lock:
            self.used = time.monotonic()
            spec = _ask_spec(self.spec_opened, statistics)
            state = await self.core.read(self.core.book.get, self.project_id)
            self.state, self.project = state, state.project
            self.user, self.token = user, token
            self.spec = spec
            self.spec_json = spec.model_dump(mode="json")
            self.spec_digest = spec.digest()
            self.rejections, self.ledger_ids, self.contributors = {}, [], []
            for participant in self.participants.values():
                participant.suppressed, participant.refusals = [], {}
            self.asks += 1
            try:
                await self._decide_asks()
                self._require_quorum("may still answer in this session")
                cells = layout(spec)
                # No project state: each node decides with its own copy (which takes
                # the revocations and withdrawals the hub pushes).
                part = {"part": "ask", "spec": spec.to_json(), "token": self._delegation()}
                total = await self._secure_sum(
                    ASK_ROUNDS + self.asks, part, len(cells), suppression=True
                )
                check_counts(cells, total)
                contributors = self.contributors
                result = combine(
                    spec,
                    cells,
                    total,
                    {n: self.participants[n].suppressed for n in contributors},
                    self._min_cell_size(),
                    refusals={n: self.participants[n].refusals for n in contributors},
                )
                return await self._finish(result)
            except QueryRefused as refusal:
                if refusal.code == HOSPITALS_CHANGED:
                    self.ended = True  # the session cannot go on: the book drops it
                    self._close_later("hospitals-changed")
                return await self._refused(str(refusal), refusal.code)

    async def _decide_asks(self) -> None:
        """`task.ask` for every node still in the session; a denied node leaves it. The
        hub's decisions are signed as one batch and appended with the round's entries."""
        recorder = MemoryRecorder()
        for node in self._answered():
            task: TaskRequest = self.participants[node].task
            decision = self.core.policy.decide(
                self.user,
                "task.ask",
                self.state,
                self.core.context(recorder=recorder, task=task, epsilon_spent=Decimal(0)),
            )
            if not decision.allow:
                self.rows[node] = NodeRow(node, "denied", decision.reason)
        entries = [hub_observation(r) for r in recorder.records]
        if entries:
            self._pending.append((HUB_PRINCIPAL, self.core.hub_signer.sign_batch(entries)))


def _ask_spec(opened: Any, statistics: object) -> Any:
    """The session's spec with `statistics` in place of the opening's; raises `TaskError`
    for a malformed list, a regression, or a kind the session was not opened for."""
    from medspace.analytics import QuerySpec, SpecError
    from medspace.analytics.spec import counted_sums

    if not isinstance(statistics, list):
        raise TaskError('ask with {"statistics": [...]}, statistics as in a query spec')
    base = opened.model_dump(mode="json")
    try:
        spec = QuerySpec.parse({**base, "statistics": statistics})
    except SpecError as error:
        raise TaskError(str(error)) from None
    kinds = set(spec.computations())
    if "logistic" in kinds:
        raise TaskError("a regression is asked as a query of its own, not inside a session")
    counted = counted_sums(spec)  # sessions are exact (no DP); the nodes refuse it too
    if counted is not None:
        raise TaskError(counted)
    outside = sorted(kinds - set(opened.computations()))
    if outside:
        raise TaskError(
            f"this session was opened for {', '.join(opened.computations())}; "
            f"{', '.join(outside)} needs a session (or query) that asks for it"
        )
    return spec


class SessionBook:
    """The hub's open analysis sessions, by id (in memory)."""

    def __init__(self, core: HubCore, channel: ChannelHub) -> None:
        self._core = core
        self._channel = channel
        self._open: dict[str, AnalysisSession] = {}

    async def open(
        self,
        user: User,
        token: str,
        project_id: str,
        spec: Any,
        signed: Sequence[SignedEntry] = (),
    ) -> dict[str, Any]:
        """Open a session (see the module docstring); the opening statistics' answer with
        the session's id. Raises `SignatureRequired` (with drafts) like a query."""
        self._expire()
        mine = [s for s in self._open.values() if s.user.name == user.name]
        if len(mine) >= MAX_SESSIONS_PER_USER:
            raise TaskError(
                f"you have {len(mine)} analysis sessions open, the limit; close one "
                "(DELETE /projects/{id}/sessions/{session}) and open again"
            )
        session = AnalysisSession(
            self._core, self._channel, user, token, project_id, spec, None, signed
        )
        answer = await session.run()
        if answer["status"] != "refused":
            session.spec_opened = session.spec
            self._open[session.task_id] = session
        return answer

    def session(self, user: User, project_id: str, session_id: str) -> AnalysisSession:
        """`user`'s open session `session_id` of `project_id`; raises `SessionNotFound`."""
        self._expire()
        session = self._open.get(session_id)
        if session is None or session.user.name != user.name or session.project_id != project_id:
            raise SessionNotFound(
                f"you have no open analysis session {session_id} in project {project_id} "
                "(closed, expired after its idle time, or the hub restarted); open a new one"
            )
        return session

    async def close(self, user: User, project_id: str, session_id: str) -> None:
        """Close `user`'s session: the nodes drop the cohort."""
        session = self.session(user, project_id, session_id)
        del self._open[session_id]
        async with session.lock:
            await session._close("closed")

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, s in self._open.items() if s.expired(now)]:
            self._open.pop(key)._close_later("expired")


__all__ = ["AnalysisSession", "SessionBook", "SessionNotFound"]
