"""The node's side of an analysis session (docs/analytics.md, "Analysis sessions"): the
opening keeps the cohort's features in memory, and each further statistic is checked
and answered from them. A mixin of `AnalyticsWorker`, which owns the sessions, the lock
and the node's policy; the secure-aggregation rounds are the worker's, as for a query."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from medspace.errors import MedSpaceError
from medspace.identity import AuthError, verify_delegation
from medspace.identity.stewards import PINS_FILE as STEWARD_PINS_FILE
from medspace.ledger import Entry
from medspace.node.analytics_query import QueryState, ask_mismatch, compute, error_reply, node_reply
from medspace.node.directory import Node
from medspace.node.filecache import FileCache
from medspace.node.worker import NodeWorker
from medspace.policy import (
    Consent,
    Context,
    MemoryRecorder,
    ProjectError,
    ProjectState,
    Purpose,
    TaskRequest,
    decide,
)

SESSION_TTL = 600.0  # seconds a session is kept after its last use
SESSION_MAX_AGE = 3600.0  # and at most this long after it opened
MAX_SESSIONS = 64
MAX_FRAMES = 8  # analysis sessions holding a cohort in memory at once (a few MB each)


@functools.lru_cache(maxsize=64)
def parsed_spec(text: str) -> Any:
    """The spec a session's ask carries, parsed once per distinct text (the node's
    light/heavy decision and the ask share it); None if it does not parse. Specs are
    frozen, so sharing is safe."""
    from medspace.analytics import QuerySpec

    try:
        return QuerySpec.parse_json(text)
    except MedSpaceError:
        return None


class AnalysisSessions:
    """Opening an analysis session, answering its further statistics, and forgetting
    sessions no longer used; mixed into `AnalyticsWorker`, which sets the attributes."""

    worker: NodeWorker
    node: Node
    _lock: threading.Lock
    _sessions: dict[str, QueryState]
    _consent_file: FileCache[Consent]

    def _expire(self) -> None:
        """Drop the sessions unused for `SESSION_TTL` or open for `SESSION_MAX_AGE`, and
        the oldest beyond `MAX_SESSIONS` (call with the lock held)."""
        now = time.monotonic()
        stale = [
            k
            for k, q in self._sessions.items()
            if q.used < now - SESSION_TTL or q.started < now - SESSION_MAX_AGE
        ]
        for key in stale:
            del self._sessions[key]
        while len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions, key=lambda k: self._sessions[k].started)
            del self._sessions[oldest]

    def _consent(self) -> Consent:
        """The node's opt-outs as they are now (re-read when the file changes)."""
        return self._consent_file.get()

    def _generation(self) -> tuple[int, int]:
        """Which project states the node's book holds, and which stewards it pins."""
        return self.worker.generation, self._stewards_version()

    def _stewards_version(self) -> int:
        """When the node's steward pins last changed (0: no pins file)."""
        try:
            return (Path(self.worker.node.directory) / STEWARD_PINS_FILE).stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def _open(
        self,
        query: QueryState,
        excluded: frozenset[str],
        audit: Callable[[Any], Any],
        *,
        owner: str,
        task: TaskRequest,
        state: ProjectState,
    ) -> None:
        """An analysis session: the cohort's features into memory, the differencing audit
        on its patients, the opening statistics from the frame (a regression, if asked,
        from the store as in a query)."""
        from medspace.analytics import Refused
        from medspace.analytics.frame import FeatureFrame
        from medspace.analytics.layout import layout

        with self._lock:
            self._expire()
            held = sum(1 for q in self._sessions.values() if q.frame is not None)
        if held >= MAX_FRAMES:
            raise Refused(
                f"this node holds {held} open analysis sessions, its limit; close one (or "
                "wait for one to expire) and open again",
                code="session-limit",
            )
        frame = FeatureFrame.load(self.node.store, query.spec, excluded)
        query.released = audit(frame.ids)
        if len(layout(query.spec)) > 0:
            query.aggregate = frame.aggregate(
                query.spec, min_cell_size=query.min_cell_size, released=query.released
            )
        compute(query, self.node.store, excluded, audit=None, regressions_only=True)
        query.frame, query.owner, query.task, query.excluded = frame, owner, task, excluded
        query.state, query.generation = state, self._generation()

    def _ask(
        self, query: QueryState, body: dict[str, Any], now: datetime
    ) -> tuple[Any, list[Entry]] | dict[str, Any]:
        """A further statistic of an analysis session: (its disclosure-controlled
        aggregate, the node's decision entries), or the reply refusing it."""
        from medspace.analytics import QuerySpec
        from medspace.analytics.spec import counted_sums

        worker = self.worker
        if query.frame is None or query.task is None:
            return error_reply("this session keeps no cohort; open an analysis session to ask more")
        try:
            user = verify_delegation(
                worker._hub_token_key,
                str(body.get("token", "")),
                audience="analytics",
                binding=query.session,
                now=now,
            ).user
            state = self._session_state(query)
            text = str(body.get("spec", ""))
            spec = parsed_spec(text) or QuerySpec.parse_json(text)  # raises, saying why
        except (AuthError, ProjectError, MedSpaceError) as error:
            return worker._refusal(
                query.session, query.project_id, "denied", str(error), "task.run/unverified"
            )
        refusal = ask_mismatch(query, spec, user.name) or counted_sums(spec)
        if refusal is not None:
            return worker._refusal(
                query.session, query.project_id, "denied", refusal, "task.run/spec"
            )
        # Its variables equal the opening's (checked just above): taking the opening's
        # object lets what is derived from them be worked out once per session.
        spec = spec.model_copy(update={"variables": query.spec.variables})
        recorder = MemoryRecorder()
        decision = decide(
            user,
            "task.run",
            state,
            Context(now=now, recorder=recorder, task=query.task, node_policy=worker.policy),
        )
        entries = [worker._decision(r) for r in recorder.records]
        if not decision.allow:
            return node_reply("denied", worker._encode_batch(entries), reason=decision.reason)
        opted_out = decision.obligation("exclude-opted-out")
        excluded = self._consent().excluded(Purpose(opted_out)) if opted_out else frozenset()
        if excluded != query.excluded:
            return worker._refusal(
                query.session,
                query.project_id,
                "refused",
                "patients' opt-outs changed since the session opened; open a new session",
                "task.run/consent-changed",
            )
        k = max(query.min_cell_size, int(decision.obligation("min-cell-size") or "0"))
        return query.frame.aggregate(spec, min_cell_size=k, released=query.released), entries

    def _session_state(self, query: QueryState) -> ProjectState:
        """The project as this node holds it now, for a session's further statistic: the
        state accepted at the opening while the node's book took no other state since,
        else the book's (a revocation or withdrawal the hub pushed). The hub does not send
        it again. Raises `ProjectError` when the steward pins changed since the opening
        (the approval would need checking again: open a new session)."""
        from medspace.policy import UnknownProjectError

        book, stewards = self._generation()
        if query.state is not None and (book, stewards) == query.generation:
            return query.state
        if stewards != query.generation[1]:
            raise ProjectError("this node's pinned stewards changed; open a new session")
        try:
            return self.worker._book.get(query.project_id)
        except UnknownProjectError:
            raise ProjectError("this node no longer holds the project") from None


__all__ = ["MAX_FRAMES", "MAX_SESSIONS", "AnalysisSessions"]
