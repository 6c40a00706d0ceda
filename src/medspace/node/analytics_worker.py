"""The node's side of a federated query: check, compute, mask, unmask, forget.

The hub drives a query in operations on one session (see `medspace.hub.analytics`):

- `prepare`: the node checks the researcher's token, keeps its own copy of the terms,
  checks that the task's computation kinds and data fields are exactly what the spec
  asks for (so a hub cannot label a regression as a count), re-decides `task.run` with
  its standing policy, checks its own copy of the DP budget, drops opted-out patients,
  runs the differencing audit (unless the project uses DP), then computes its local,
  disclosure-controlled aggregate (or builds the design matrix of a regression) and
  keeps it in memory for this session only. Disclosure control checks the aggregate
  together with what the node released about the same cohort before
  (`medspace.analytics.release_book`);
- `mask` (secure aggregation round 1): verifies the peers' signed agreement keys (pinned
  on first use) and that every participant is a hospital of the agreement; on a DP
  project, charges its own copy of the budget at its first contribution (refused when
  it would overrun); masks its vector (a query's local statistics in round 0 only; for
  a regression, the gradient/Hessian at the hub's current coefficients) and returns it
  with its suppression flags;
- `confirm` (only when nodes dropped): commits to the hub's survivor set, once per round;
- `unmask` (round 2): answers the hub's unmask request once;
- `confirm` and `unmask` only over the survivors of the session's first sum (a sum of
  related numbers over another set of nodes would give one node's);
- `close`: forgets the session.

An *analysis session* (`prepare` with `keep`; `medspace.node.analytics_sessions`) also
keeps the cohort's features in memory (`FeatureFrame`), and a later `mask` with part
`ask` carries a further statistic over the same cohort and variables: the node checks
the researcher's token (the session's owner only), re-decides `task.run` with the
session's task and the project's current state, refuses if its opt-outs changed since
the opening, computes the statistic from the frame with the same disclosure control and
masks it. The cohort's differencing audit ran once,
at the opening; a session's statistics cannot change the cohort.

Every decision and every contribution is a ledger entry the node signs itself; entries
hold counts, codes and digests of masked messages, never values (a digest of a small
count could be brute-forced, a digest of a masked vector cannot).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from medspace.errors import MedSpaceError
from medspace.identity import AuthError, parse_public_key, verify_delegation
from medspace.ledger import Entry, EntryType, canonical_bytes, utc_timestamp
from medspace.node.analytics_query import (
    QueryState,
    compute,
    error_reply,
    floats,
    node_reply,
    task_mismatch,
)
from medspace.node.analytics_sessions import AnalysisSessions, parsed_spec
from medspace.node.filecache import FileCache
from medspace.node.prepared import PreparedSessions
from medspace.node.standing import CONSENT_FILE, load_consent
from medspace.node.worker import NodeWorker
from medspace.policy import (
    Context,
    MemoryRecorder,
    ProjectError,
    ProjectState,
    Purpose,
    TaskRequest,
    decide,
)

log = logging.getLogger(__name__)

ANALYTICS_DB = "analytics.db"
LIGHT_CELLS = 32
LIGHT_RECORD = 64


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class AnalyticsWorker(AnalysisSessions):
    """One node's federated-analytics handler (thread-safe; the service calls `handle`
    from worker threads)."""

    def __init__(self, worker: NodeWorker) -> None:
        from medspace.analytics.secagg import PINS_FILE, AgreementKey, PeerPins, announce

        self.worker = worker
        self.node = worker.node
        self.name = worker.name
        agreement_key = self.node.agreement_private_key()
        self._announcement = announce(self.name, worker.identity_key, agreement_key)
        self._agreement = AgreementKey(agreement_key)
        self._pins = PeerPins(Path(self.node.directory) / PINS_FILE)
        self._db = Path(self.node.directory) / ANALYTICS_DB
        self._sessions: dict[str, QueryState] = {}
        self._lock = threading.Lock()
        self._budget: Any = None
        self._accepted: dict[str, tuple[str, ProjectState]] = {}
        self._audit: Any = None
        self._prepared: PreparedSessions | None = None
        self._releases: Any = None
        directory = Path(self.node.directory)
        self._consent_file = FileCache(directory / CONSENT_FILE, lambda _: load_consent(directory))

    def close(self) -> None:
        """Forget every session and release the local databases."""
        with self._lock:
            self._sessions.clear()
        for held in (self._budget, self._audit):
            closer = getattr(held, "close", None)
            if callable(closer):
                closer()

    def announcement(self) -> dict[str, Any]:
        """This node's signed agreement-key announcement (JSON)."""
        result: dict[str, Any] = self._announcement.to_dict()
        return result

    # -- dispatch ---------------------------------------------------------------------

    def handle(self, body: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
        """Handle one analytics operation; the reply (status ok, refused or error)."""
        now = now or datetime.now(UTC)
        session = body.get("session")
        if not isinstance(session, str) or not _UUID.fullmatch(session):
            return error_reply("the analytics request names no valid session")
        op = body.get("op")
        try:
            if op == "prepare":
                return self._prepare(session, body, now)
            if op == "close":
                with self._lock:
                    self._sessions.pop(session, None)
                return {"type": "reply", "status": "ok"}
            query = self._session(session)
            query.used = time.monotonic()
            if op == "mask":
                return self._mask(query, body, now)
            if op in ("confirm", "unmask"):
                return self._reveal(query, body, op)
        except MedSpaceError as error:
            return error_reply(str(error)[:300])
        except Exception as error:  # a bug must not leave the hub waiting for its deadline
            log.exception("analytics %s failed", op)
            return error_reply(f"the node failed ({type(error).__name__}); see the node's log")
        return error_reply("unknown analytics operation")

    def light(self, body: dict[str, Any]) -> bool:
        """Whether answering `body` is light enough for the node's event loop (about a
        millisecond, bounded whatever the query): an unmasking round, masking a vector
        computed at the prepare, or a session's statistic with at most `LIGHT_CELLS`
        cells about a cohort with at most `LIGHT_RECORD` cells released before (its
        disclosure check grows with both). Everything else (a prepare, a regression
        step, a large table) runs in a worker thread, so that it never holds up an
        emergency lookup on the same node."""
        from medspace.analytics.layout import layout

        op = body.get("op")
        if op in ("confirm", "unmask"):
            return True
        if op != "mask":
            return False
        part = body.get("part")
        if part not in ("local", "ask"):
            return False
        with self._lock:
            query = self._sessions.get(str(body.get("session")))
        if part == "local":
            return query is None or query.epsilon is None  # a DP spend writes its database
        if query is None or query.frame is None:
            return True  # refused at once: nothing to compute
        spec = parsed_spec(str(body.get("spec", "")))
        released = 0 if query.released is None else len(query.released)
        return spec is not None and len(layout(spec)) <= LIGHT_CELLS and released <= LIGHT_RECORD

    def _session(self, session: str) -> QueryState:
        with self._lock:
            query = self._sessions.get(session)
        if query is None:
            raise _SessionError("this node holds no such analytics session (expired or closed)")
        return query

    # -- prepare ----------------------------------------------------------------------

    def _prepare(self, session: str, body: dict[str, Any], now: datetime) -> dict[str, Any]:
        from medspace.analytics import QuerySpec, Refused
        from medspace.analytics.budget import BudgetExceeded
        from medspace.analytics.dp import check_supported
        from medspace.analytics.spec import counted_sums

        worker = self.worker
        try:
            user = verify_delegation(
                worker._hub_token_key,
                str(body.get("token", "")),
                audience="analytics",
                binding=session,
                now=now,
            ).user
            task = TaskRequest.parse(body.get("task"))
            state = self._project_state(body.get("project"), now)
            spec = QuerySpec.parse_json(str(body.get("spec", "")))
        except (AuthError, ProjectError, MedSpaceError) as error:
            return worker._refusal(session, None, "denied", str(error), "task.run/unverified")
        if not self._prepared_store().claim(session, now):
            return worker._refusal(
                session,
                state.project.id,
                "refused",
                "this node prepared that analytics session before; a session id is used "
                "once (the same id again would repeat its masks and its DP spend): run the "
                "query again for a new one",
                "task.run/replay",
            )
        keep = body.get("keep") is True
        mismatch = task_mismatch(task, spec, every_variable=keep)
        if mismatch is not None:
            return worker._refusal(session, task.project_id, "denied", mismatch, "task.run/spec")
        project = state.project
        dp_total = project.disclosure.dp_epsilon
        if keep and dp_total is not None:
            return worker._refusal(
                session,
                project.id,
                "refused",
                "analysis sessions are not offered on differential-privacy projects; ask one "
                "query at a time",
                "task.run/dp-session",
            )
        spent = Decimal(0)
        if dp_total is not None:
            spent = self._budget_store().spent(project.id)
        recorder = MemoryRecorder()
        decision = decide(
            user,
            "task.run",
            state,
            Context(
                now=now,
                recorder=recorder,
                task=task,
                node_policy=worker.policy,
                epsilon_spent=spent,
            ),
        )
        entries = [worker._entry(r) for r in recorder.records]
        if not decision.allow:
            return node_reply("denied", entries, reason=decision.reason)
        k = int(decision.obligation("min-cell-size") or "0")
        query = QueryState(
            session, project.id, task.contract_hash, spec, k, nodes=frozenset(project.nodes)
        )
        try:
            opted_out = decision.obligation("exclude-opted-out")
            excluded = self._consent().excluded(Purpose(opted_out)) if opted_out else frozenset()
            if dp_total is not None:
                # DP replaces the differencing audit; the node keeps its own budget copy.
                if task.epsilon is None:
                    raise Refused(
                        "a task of a differential-privacy project must state its epsilon",
                        code="dp-no-epsilon",
                    )
                try:  # the hub refuses these too; a node does not take its word for it
                    check_supported(spec)
                except MedSpaceError as unsupported:
                    raise Refused(str(unsupported), code="dp-unsupported") from None
                # Checked now, charged when this node contributes (round 0 of `mask`): a
                # query refused before that (quorum, another node) costs nothing here,
                # as it costs nothing at the hub.
                self._budget_store().check(project.id, task.epsilon, dp_total)
                query.epsilon, query.dp_total = task.epsilon, dp_total
                compute(query, self.node.store, excluded, audit=None)
            else:
                counted = counted_sums(spec)
                if counted is not None:
                    raise Refused(counted, code="binary-sum")
                check = self._clearance(project.id, k)
                if keep:
                    self._open(query, excluded, check, owner=user.name, task=task, state=state)
                else:
                    compute(query, self.node.store, excluded, audit=check)
        except (Refused, BudgetExceeded) as refusal:
            code = getattr(refusal, "code", "dp-budget")
            entries.append(self._compute_entry(query_id=session, project=project.id, code=code))
            return node_reply("refused", entries, reason=str(refusal))
        with self._lock:
            self._expire()
            self._sessions[session] = query
        refusals = dict(query.aggregate.refusals) if query.aggregate is not None else {}
        return node_reply("ok", entries, min_cell_size=k, refusals=refusals)

    def _project_state(self, data: object, now: datetime) -> ProjectState:
        """The node's own copy of the project (`NodeWorker._own_copy`: first-seen terms,
        steward-signed approval, no reopening). The exact state last accepted for a
        project is remembered, so a repeat skips the re-check and the database write;
        anything else, an older state included, goes through the full check. The memory
        is void once the node's book took any other state (a revocation pushed by the
        hub) or its pinned stewards changed, so a hub resending an old approved state
        after a revocation is refused."""
        state_digest = (
            hashlib.sha256(canonical_bytes(data)).hexdigest() if isinstance(data, dict) else ""
        )
        digest = f"{state_digest}/{self.worker.generation}/{self._stewards_version()}"
        project_id = data.get("project", {}).get("id") if isinstance(data, dict) else None
        with self._lock:
            known = self._accepted.get(str(project_id))
        if known is not None and known[0] == digest:
            return known[1]
        state = self.worker._own_copy(ProjectState.parse(data), now)
        digest = f"{state_digest}/{self.worker.generation}/{self._stewards_version()}"
        with self._lock:
            self._accepted[state.project.id] = (digest, state)
        return state

    # -- round 1 ----------------------------------------------------------------------

    def _mask(self, query: QueryState, body: dict[str, Any], now: datetime) -> dict[str, Any]:
        from medspace.analytics.secagg import MaskingSession, encode_vector, verified_peers

        round_no = body.get("round")
        participants = body.get("participants")
        t = body.get("threshold")
        peers_in = body.get("peers")
        if peers_in is None and query.peers is not None:
            # the hub leaves out the peers of the session's previous round
            peers_in = {**query.peers[0], self.name: None}
        if (
            type(round_no) is not int
            or round_no < 0
            or type(t) is not int
            or not isinstance(participants, list)
            or self.name not in participants
            or not isinstance(peers_in, dict)
            or sorted(peers_in) != sorted(participants)
        ):
            return error_reply("malformed mask request: round, participants, threshold and peers")
        with self._lock:  # one masked input per round, even under concurrent requests
            if round_no in query.masks:
                return error_reply(f"round {round_no} of this session was masked already")
            query.masks[round_no] = None  # reserved: a failed round is not masked again
        part = body.get("part")
        decisions: list[Entry] = []
        refusals: dict[str, str] | None = None
        if part == "ask":
            asked = self._ask(query, body, now)
            if isinstance(asked, dict):
                return asked
            aggregate, decisions = asked
            values = list(aggregate.values)
            flags: list[str | None] | None = list(aggregate.suppressed)
            refusals = dict(aggregate.refusals)
            statistic = "query"
        elif part == "local":
            if query.aggregate is None:
                return error_reply("this query has no local statistics")
            if round_no != 0:
                # The query's local statistics are summed once, in round 0: the same
                # vector in a second round over other nodes would give its difference.
                return error_reply("a query's local statistics are masked in round 0 only")
            values = list(query.aggregate.values)
            flags = list(query.aggregate.suppressed)
            statistic = "query"
        else:
            regression = query.regressions.get(str(part))
            beta = floats(body.get("beta"))
            if regression is None or beta is None:
                return error_reply("malformed regression step: unknown statistic or coefficients")
            allowed = next(s.max_iterations for s in query.spec.statistics if s.id == part)
            values = list(regression.step(beta))
            with self._lock:
                steps = query.steps[str(part)] = query.steps.get(str(part), 0) + 1
            if steps > allowed:
                # Each step sums the gradient and information matrix at coefficients the
                # hub chooses; more steps than the fit may take would let it weight the
                # patients as it likes, again and again.
                return error_reply(
                    f"{part} may take at most {allowed} Newton steps (its max_iterations)"
                )
            flags = None
            statistic = "logistic"
        others = {n: peers_in[n] for n in participants if n != self.name}
        if query.peers is not None and query.peers[0] == others:
            peers = query.peers[1]  # the same signed announcements as the last round
        else:
            announcements = {n: p.get("announcement") for n, p in others.items()}
            identities = {
                n: parse_public_key(str(p.get("identity_key"))) for n, p in others.items()
            }
            peers = verified_peers(announcements, identities, self._pins)
            query.peers = (others, peers)
        # Only the agreement's hospitals: a hub adding names of its own to the round
        # would hold their masks and read this node's vector.
        masking = MaskingSession(
            self.name, self._agreement, peers, query.session, round_no, t, allowed=query.nodes
        )
        encoded = encode_vector(values)
        if query.epsilon is not None and query.dp_total is not None:
            from medspace.analytics.budget import BudgetExceeded

            try:  # charged when the node first contributes (a repeat is not charged again)
                self._budget_store().spend(
                    query.project_id, query.session, query.epsilon, query.dp_total
                )
            except BudgetExceeded as exceeded:
                refusal = self._compute_entry(
                    query_id=query.session, project=query.project_id, code="dp-budget"
                )
                return node_reply("refused", [refusal], reason=str(exceeded))
        masked = masking.masked_input(encoded)
        query.masks[round_no] = masking
        digest = hashlib.sha256(canonical_bytes(masked)).hexdigest()
        details: dict[str, Any] = {
            "task": query.session,
            "statistic": statistic,
            "method": "secagg",
            "status": "completed",
            "round": round_no,
        }
        if flags is not None:
            details["suppressed_cells"] = sum(1 for f in flags if f is not None)
        if query.epsilon is not None and round_no == 0:
            details["epsilon_micros"] = int(query.epsilon * 1_000_000)
        entry = Entry(
            type=EntryType.RESULT,
            actor=self.name,
            time=utc_timestamp(now),
            node=self.name,
            project=query.project_id,
            artefacts={
                "result": f"sha256:{digest}",
                "agreement": f"sha256:{query.contract_hash}",
            },
            details=details,
        )
        reply = node_reply("ok", self.worker._encode_batch([*decisions, entry]), masked=masked)
        if flags is not None:
            reply["suppressed"] = flags
        if refusals is not None:
            reply["refusals"] = refusals
        return reply

    # -- round 2 ----------------------------------------------------------------------

    def _reveal(self, query: QueryState, body: dict[str, Any], step: str) -> dict[str, Any]:
        """A masked round's `confirm` (only when nodes dropped) or `unmask`, once each."""
        round_no = body.get("round")
        masking = query.masks.get(round_no) if type(round_no) is int else None
        if masking is None:
            return error_reply(f"no masked round to {step} in this session")
        request = body.get("request")
        act = masking.confirm if step == "confirm" else masking.unmask
        return self._summed_by(query, request, lambda: node_reply("ok", [], **{step: act(request)}))

    def _summed_by(
        self, query: QueryState, request: object, answer: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """`answer()` (the masking session's confirm or unmask) if this round is summed
        over the same nodes as the session's first sum, else an error: sums of related
        statistics over two sets of nodes (a count by sex over h1-h3, then the count
        over h1-h2) give the numbers of the node in one set and not the other. The first
        set is fixed by the first request the masking session accepts."""
        survivors = request.get("survivors") if isinstance(request, dict) else None
        if not isinstance(survivors, list) or not all(isinstance(n, str) for n in survivors):
            return answer()  # malformed: the masking session refuses it with the details
        summed = frozenset(survivors)
        with query.summing:  # one round at a time: a concurrent round cannot differ
            if query.summed is not None and query.summed != summed:
                return error_reply(
                    "this session's earlier rounds were summed over other nodes; a sum over "
                    "a different set could be compared with them to give one node's "
                    "numbers, so it is refused: open a new session"
                )
            reply = answer()  # raises when refused: then nothing is fixed by it
            query.summed = summed
            return reply

    # -- plumbing ---------------------------------------------------------------------

    def _prepared_store(self) -> PreparedSessions:
        with self._lock:
            if self._prepared is None:
                self._prepared = PreparedSessions(self._db)
            return self._prepared

    def _budget_store(self) -> Any:
        from medspace.analytics.budget import Budget

        with self._lock:
            if self._budget is None:
                self._budget = Budget.open_file(self._db)
            return self._budget

    def _clearance(self, project_id: str, k: int) -> Callable[[Any], Any]:
        """What a cohort goes through before anything about it is computed for release:
        the differencing audit (raises `DifferencingRefused`), then the release record
        of what was released about it before (returned)."""
        from medspace.analytics.differencing import QueryAudit
        from medspace.analytics.release_book import ReleaseBook

        with self._lock:
            if self._audit is None:
                self._audit = QueryAudit(self._db)
            if self._releases is None:
                self._releases = ReleaseBook(self._db)
            audit, releases = self._audit, self._releases

        def clear(ids: Any) -> Any:
            audit.check(project_id, ids, min_cell_size=k)
            return releases.record(project_id, ids)

        return clear

    def _compute_entry(self, *, query_id: str, project: str, code: str) -> str:
        """The node's signed record of a refusal to compute (a reason code, no data)."""
        reason = code if code[:1].isalpha() else "refused"
        entry = Entry(
            type=EntryType.COMPUTE,
            actor=self.name,
            time=utc_timestamp(),
            node=self.name,
            project=project,
            details={"task": query_id, "decision": "deny", "reason": reason, "role": "node"},
        )
        return self.worker._encode(entry)


class _SessionError(MedSpaceError):
    """The hub named an analytics session this node does not hold."""
