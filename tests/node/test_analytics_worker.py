"""The node's side of a federated query, driven directly (no network): the node checks
that the task describes the query, never masks twice, refuses forged peer keys and
differencing attacks, and signs what it contributes."""

from __future__ import annotations

import base64
import copy
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from tests.hub.analytics_support import (
    HCC_SPEC,
    MI_SPEC,
    Person,
    make_study_node,
    study_terms,
)
from tests.hub.support import delegation, steward_approval

from medspace.analytics import QuerySpec
from medspace.analytics.layout import layout
from medspace.analytics.secagg import (
    Aggregator,
    MaskingSession,
    announce,
    default_threshold,
)
from medspace.analytics.secagg_peers import Announcement
from medspace.identity import Role, User, issue_token, public_key_text
from medspace.identity.stewards import pin_steward
from medspace.ledger import NoteSigner, SignedEntry
from medspace.node import open_node
from medspace.node.analytics_worker import LIGHT_CELLS, AnalyticsWorker
from medspace.node.standing import HubPin
from medspace.node.worker import NodeWorker
from medspace.policy import Project, ProjectState, TaskRequest, contract_hash

NOW = datetime.now(UTC)
HUB_KEY = Ed25519PrivateKey.generate()
STEWARD_KEY = Ed25519PrivateKey.generate()
PEERS = {name: (Ed25519PrivateKey.generate(), X25519PrivateKey.generate()) for name in ("h2", "h3")}


@pytest.fixture(scope="module")
def study_node(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Person]]:
    directory, people = make_study_node(tmp_path_factory.mktemp("n") / "h1", "h1", 80, 5)
    pin_steward(directory, "steward-h1", public_key_text(STEWARD_KEY))
    return directory, people


@pytest.fixture
def node_dir(study_node: tuple[Path, list[Person]]) -> Path:
    return study_node[0]


@pytest.fixture
def analytics(node_dir: Path) -> Iterator[AnalyticsWorker]:
    (node_dir / "analytics.db").unlink(missing_ok=True)
    pin = HubPin(
        "test-hub",
        public_key_text(HUB_KEY),
        NoteSigner("test-hub", Ed25519PrivateKey.generate()).verifier.vkey,
    )
    with open_node(node_dir) as node:
        worker = NodeWorker(node, pin)
        result = AnalyticsWorker(worker)
        yield result
        result.close()
        worker.close()


def _prepare(
    project_id: str,
    spec: dict[str, Any],
    *,
    terms: dict[str, Any] | None = None,
    **task_changes: Any,
) -> dict[str, Any]:
    # The same project id must give the same terms each time (the node keeps first-seen
    # terms): fix the validity window to NOW rather than to the clock at each call.
    changes = {
        "starts_at": (NOW - timedelta(minutes=5)).isoformat(),
        "expires_at": (NOW + timedelta(days=30)).isoformat(),
        **(terms or {}),
    }
    project = Project.parse(
        {"owner": "alice", **study_terms(project_id, ["h1", "h2", "h3"], **changes)}
    )
    steward = User("steward-h1", Role.STEWARD, "h1")
    state = steward_approval(ProjectState.request(project, NOW), steward, STEWARD_KEY, NOW)
    parsed = QuerySpec.parse(spec)
    kinds = parsed.computations()
    fields = {
        "project_id": project.id,
        "node": "h1",
        "computation": kinds[0],
        "kinds": kinds[1:],
        "variables": parsed.data_fields(),
        "contract_hash": contract_hash(project, "h1"),
        **task_changes,
    }
    session = str(uuid.uuid4())
    token = delegation(HUB_KEY, User("alice", Role.RESEARCHER), "analytics", session, NOW)
    return {
        "type": "analytics",
        "op": "prepare",
        "session": session,
        "task": TaskRequest(**fields).model_dump(mode="json"),
        "project": state.model_dump(mode="json"),
        "token": token,
        "spec": parsed.to_json(),
    }


def _peers(own: AnalyticsWorker) -> dict[str, Any]:
    peers = {"h1": {"announcement": own.announcement(), "identity_key": "unused"}}
    for name, (identity, agreement) in PEERS.items():
        peers[name] = {
            "announcement": announce(name, identity, agreement).to_dict(),
            "identity_key": public_key_text(identity.public_key()),
        }
    return peers


def _mask(session: str, peers: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = {
        "type": "analytics",
        "op": "mask",
        "session": session,
        "round": 0,
        "participants": sorted(peers),
        "threshold": 2,
        "peers": peers,
        "part": "local",
    }
    return {**body, **changes}


def test_prepared_query_masks_once_and_signs_its_contribution(
    analytics: AnalyticsWorker,
) -> None:
    request = _prepare("node-ok", HCC_SPEC)
    prepared = analytics.handle(request, now=NOW)
    assert prepared["status"] == "ok", prepared.get("reason")
    assert prepared["min_cell_size"] == 5
    assert prepared["entries"]
    masked = analytics.handle(_mask(request["session"], _peers(analytics)), now=NOW)
    assert masked["status"] == "ok", masked.get("reason")
    assert len(masked["suppressed"]) > 0
    (entry,) = [SignedEntry.from_bytes(base64.b64decode(e)).entry for e in masked["entries"]]
    assert entry.actor == "h1" and entry.type.value == "result"
    assert entry.details["method"] == "secagg"
    again = analytics.handle(_mask(request["session"], _peers(analytics)), now=NOW)
    assert again["status"] == "error"
    assert "masked already" in again["reason"]


def test_a_session_id_is_prepared_once_even_after_close_or_restart(
    analytics: AnalyticsWorker, node_dir: Path
) -> None:
    # A hub preparing one id again would get the same pair masks under another dropout
    # story (and, under DP, fresh noise for one budget charge).
    request = _prepare("node-replay", HCC_SPEC)
    assert analytics.handle(request, now=NOW)["status"] == "ok"
    assert analytics.handle(_mask(request["session"], _peers(analytics)), now=NOW)["status"] == "ok"
    again = analytics.handle(copy.deepcopy(request), now=NOW)
    assert again["status"] == "refused"
    assert "prepared that analytics session before" in again["reason"]
    (entry,) = [SignedEntry.from_bytes(base64.b64decode(e)).entry for e in again["entries"]]
    assert entry.details["reason"] == "task.run/replay"
    closed = {"type": "analytics", "op": "close", "session": request["session"]}
    assert analytics.handle(closed, now=NOW)["status"] == "ok"
    assert analytics.handle(copy.deepcopy(request), now=NOW)["status"] == "refused"
    with open_node(node_dir) as node:  # a restarted node remembers too
        pin = HubPin(
            "test-hub",
            public_key_text(HUB_KEY),
            NoteSigner("test-hub", Ed25519PrivateKey.generate()).verifier.vkey,
        )
        worker = NodeWorker(node, pin)
        restarted = AnalyticsWorker(worker)
        try:
            assert restarted.handle(copy.deepcopy(request), now=NOW)["status"] == "refused"
        finally:
            restarted.close()
            worker.close()


def test_a_round_with_a_participant_outside_the_agreement_is_refused(
    analytics: AnalyticsWorker,
) -> None:
    # The project names h1, h2 and h3. A hub adding "h9" (a key it made) would hold the
    # share of h1's self-mask meant for h9 and h1's pair seed with it.
    request = _prepare("node-sybil", HCC_SPEC)
    assert analytics.handle(request, now=NOW)["status"] == "ok"
    peers = _peers(analytics)
    sybil_identity, sybil_agreement = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
    peers["h9"] = {
        "announcement": announce("h9", sybil_identity, sybil_agreement).to_dict(),
        "identity_key": public_key_text(sybil_identity.public_key()),
    }
    del peers["h2"], peers["h3"]
    reply = analytics.handle(_mask(request["session"], peers), now=NOW)
    assert reply["status"] == "error"
    assert "not nodes of the approved agreement" in reply["reason"]
    assert "masked" not in reply


def _round(
    analytics: AnalyticsWorker, session: str, round_no: int, members: list[str], **part: Any
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One secure-aggregation round as a hub would run it over `members`: h1 is the
    worker under test, h2 and h3 honest peers. (h1's mask reply, h1's unmask reply.)"""
    t = default_threshold(len(members))
    peers = {n: p for n, p in _peers(analytics).items() if n in members}
    masked = analytics.handle(
        _mask(session, peers, round=round_no, threshold=t, **{"part": "local", **part}), now=NOW
    )
    if masked["status"] != "ok":
        return masked, None
    keys = {n: agreement.public_key() for n, (_identity, agreement) in PEERS.items()}
    keys["h1"] = Announcement.from_dict(analytics.announcement()).public_key()
    hub = Aggregator(
        members, t, len(base64.b64decode(masked["masked"]["masked"])) // 16, session, round_no
    )
    hub.add_masked("h1", masked["masked"])
    for name in members[1:]:
        peer = MaskingSession(
            name, PEERS[name][1], {p: keys[p] for p in members if p != name}, session, round_no, t
        )
        hub.add_masked(name, peer.masked_input([1] * hub.length))
    request = hub.unmask_requests()["h1"]
    body = {"type": "analytics", "op": "unmask", "session": session, "round": round_no}
    return masked, analytics.handle({**body, "request": request}, now=NOW)


def test_a_querys_local_statistics_are_masked_in_round_zero_only(
    analytics: AnalyticsWorker,
) -> None:
    # The same vector summed over h1-h3, then over h1-h2 and h1-h3, gives h1's own.
    request = _prepare("node-local-once", HCC_SPEC)
    assert analytics.handle(request, now=NOW)["status"] == "ok"
    _masked, unmasked = _round(analytics, request["session"], 0, ["h1", "h2", "h3"])
    assert unmasked is not None and unmasked["status"] == "ok", unmasked
    again, _ = _round(analytics, request["session"], 7, ["h1", "h2"])
    assert again["status"] == "error" and "round 0 only" in again["reason"]


def test_every_round_of_a_session_is_summed_over_the_same_nodes(
    analytics: AnalyticsWorker,
) -> None:
    # "count by sex" over h1-h3, then "count" over h1-h2: h3's count. The node refuses
    # to unmask a round whose survivors differ from the session's first sum.
    request = _open_session(analytics, "node-session-same")
    by_sex = {"part": "ask", "spec": _ask_spec(), "token": request["token"]}
    _masked, first = _round(analytics, request["session"], 1001, ["h1", "h2", "h3"], **by_sex)
    assert first is not None and first["status"] == "ok", first
    count = {**by_sex, "spec": _ask_spec([{"id": "n", "kind": "count"}])}
    masked, second = _round(analytics, request["session"], 1002, ["h1", "h2"], **count)
    assert masked["status"] == "ok"  # masking reveals nothing; unmasking would
    assert second is not None and second["status"] == "error"
    assert "summed over other nodes" in second["reason"]
    assert "unmask" not in second
    _masked, third = _round(analytics, request["session"], 1003, ["h1", "h2", "h3"], **count)
    assert third is not None and third["status"] == "ok", third  # the same nodes: fine


def test_a_dp_node_is_not_charged_for_a_round_it_refused(analytics: AnalyticsWorker) -> None:
    dp_terms = {"disclosure": {"min_cell_size": 5, "dp_epsilon": "1"}}
    request = _prepare("node-dp-refused-round", COUNTS, terms=dp_terms, epsilon="0.6")
    assert analytics.handle(request, now=NOW)["status"] == "ok"
    peers = _peers(analytics)
    peers["h2"] = {**peers["h2"], "announcement": peers["h3"]["announcement"]}  # bad peer
    refused = analytics.handle(_mask(request["session"], peers), now=NOW)
    assert refused["status"] == "error" and "masked" not in refused
    assert analytics._budget_store().spent("node-dp-refused-round") == 0


def test_a_dp_node_refuses_what_cannot_be_released_under_dp(analytics: AnalyticsWorker) -> None:
    # The hub refuses these before sending; a node does not take its word for it (its
    # budget would not be charged for a regression's rounds, which never noise).
    dp_terms = {"disclosure": {"min_cell_size": 5, "dp_epsilon": "1"}}
    for project, spec in (("node-dp-logistic", MI_SPEC), ("node-dp-mean", HCC_SPEC)):
        reply = analytics.handle(_prepare(project, spec, terms=dp_terms, epsilon="0.1"), now=NOW)
        assert reply["status"] == "refused", project
        entries = [SignedEntry.from_bytes(base64.b64decode(e)).entry for e in reply["entries"]]
        assert entries[-1].details["reason"] == "dp-unsupported"


COUNTS = {**HCC_SPEC, "statistics": [{"id": "by_band", "kind": "count", "by": ["age_band"]}]}


def _ask_spec(statistics: list[dict[str, Any]] | None = None) -> str:
    chosen = statistics or [{"id": "by_sex", "kind": "count", "by": ["sex"]}]
    return QuerySpec.parse({**HCC_SPEC, "statistics": chosen}).to_json()


def test_task_that_mislabels_the_query_kinds_is_denied(analytics: AnalyticsWorker) -> None:
    request = _prepare("node-kinds", MI_SPEC, computation="count", kinds=())
    reply = analytics.handle(request, now=NOW)
    assert reply["status"] == "denied"
    assert "computation kinds" in reply["reason"]


def test_task_omitting_data_fields_the_query_reads_is_denied(analytics: AnalyticsWorker) -> None:
    request = _prepare("node-fields", HCC_SPEC, variables=("person.id",))
    reply = analytics.handle(request, now=NOW)
    assert reply["status"] == "denied"
    assert "omits data fields" in reply["reason"]


def test_unknown_or_closed_session_is_refused(analytics: AnalyticsWorker) -> None:
    unknown = analytics.handle(_mask(str(uuid.uuid4()), _peers(analytics)), now=NOW)
    assert unknown["status"] == "error"
    assert "no such analytics session" in unknown["reason"]
    request = _prepare("node-close", HCC_SPEC)
    assert analytics.handle(request, now=NOW)["status"] == "ok"
    closed = {"type": "analytics", "op": "close", "session": request["session"]}
    assert analytics.handle(closed, now=NOW)["status"] == "ok"
    after = analytics.handle(_mask(request["session"], _peers(analytics)), now=NOW)
    assert "no such analytics session" in after["reason"]


def test_peer_announcement_not_signed_by_its_identity_key_is_refused(
    analytics: AnalyticsWorker,
) -> None:
    request = _prepare("node-forged", HCC_SPEC)
    assert analytics.handle(request, now=NOW)["status"] == "ok"
    peers = _peers(analytics)
    hub_made = announce("h2", Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
    peers["h2"] = {**peers["h2"], "announcement": hub_made.to_dict()}
    reply = analytics.handle(_mask(request["session"], peers), now=NOW)
    assert reply["status"] == "error"
    assert "h2" in reply["reason"] and "not signed" in reply["reason"]


def test_malformed_regression_coefficients_are_refused(analytics: AnalyticsWorker) -> None:
    request = _prepare("node-beta", MI_SPEC)
    assert analytics.handle(request, now=NOW)["status"] == "ok"
    bad = (None, [], ["nan"] * 6, [0.5] * 6, ["1e400"] * 6)
    for round_no, beta in enumerate(bad, start=1):  # a failed round is never masked again
        body = _mask(
            request["session"], _peers(analytics), part="mi_model", beta=beta, round=round_no
        )
        reply = analytics.handle(body, now=NOW)
        assert reply["status"] == "error", beta
        assert "malformed regression step" in reply["reason"]
    again = _mask(request["session"], _peers(analytics), part="mi_model", beta=["0"] * 6, round=1)
    assert "masked already" in analytics.handle(again, now=NOW)["reason"]


def test_a_regression_takes_no_more_newton_steps_than_its_max_iterations(
    analytics: AnalyticsWorker,
) -> None:
    # Each step sums the gradient and information matrix at coefficients the hub picks:
    # unlimited steps would let it weight the patients as it likes, over and over.
    spec = copy.deepcopy(MI_SPEC)
    spec["statistics"][0]["max_iterations"] = 3
    request = _prepare("node-steps", spec)
    assert analytics.handle(request, now=NOW)["status"] == "ok"
    replies = [
        analytics.handle(
            _mask(
                request["session"],
                _peers(analytics),
                part="mi_model",
                beta=[repr(0.1 * step)] * 6,
                round=step,
            ),
            now=NOW,
        )
        for step in range(1, 5)
    ]
    assert [r["status"] for r in replies] == ["ok", "ok", "ok", "error"]
    assert "at most 3 Newton steps" in replies[-1]["reason"]


def test_second_cohort_differing_by_fewer_than_k_patients_is_refused(
    analytics: AnalyticsWorker, study_node: tuple[Path, list[Person]]
) -> None:
    base = copy.deepcopy(HCC_SPEC)
    base["statistics"] = [{"id": "patients", "kind": "count"}]
    first = analytics.handle(_prepare("node-diff", base), now=NOW)
    assert first["status"] == "ok"
    # "the same patients except the oldest few": leaves out 1 to 4 people (k = 5)
    ages = sorted(p.age for p in study_node[1] if p.hcc)
    cut = next(a for a in reversed(ages) if 0 < sum(x > a - 1 for x in ages) < 5) - 1
    narrower = copy.deepcopy(base)
    narrower["cohort"]["age"] = {"min": 0, "max": cut}
    reply = analytics.handle(_prepare("node-diff", narrower), now=NOW)
    assert reply["status"] == "refused"
    assert "differ" in reply["reason"]
    last = SignedEntry.from_bytes(base64.b64decode(reply["entries"][-1])).entry
    assert last.type.value == "compute" and last.details["decision"] == "deny"


def test_old_approved_state_resent_after_a_pushed_revocation_is_refused(
    analytics: AnalyticsWorker,
) -> None:
    request = _prepare("node-revoked", HCC_SPEC)
    assert analytics.handle(request, now=NOW)["status"] == "ok"
    approved = ProjectState.parse(request["project"])
    revoked = approved.revoke(User("alice", Role.RESEARCHER), "study stopped", NOW)
    pushed = analytics.worker.handle_project({"project": revoked.model_dump(mode="json")}, NOW)
    assert pushed["status"] == "ok"
    session = str(uuid.uuid4())  # the hub shows the old state again, in a new query
    token = delegation(HUB_KEY, User("alice", Role.RESEARCHER), "analytics", session, NOW)
    replay = {**request, "session": session, "token": token}
    reply = analytics.handle(replay, now=NOW)
    assert reply["status"] != "ok"
    assert "revoked" in reply["reason"] or "closed" in reply["reason"]


def test_unpinning_the_steward_stops_queries_on_an_unchanged_state(
    analytics: AnalyticsWorker, node_dir: Path
) -> None:
    from medspace.identity.stewards import unpin_steward

    request = _prepare("node-unpinned", HCC_SPEC)
    assert analytics.handle(request, now=NOW)["status"] == "ok"
    unpin_steward(node_dir, "steward-h1")
    try:
        reply = analytics.handle({**request, "session": str(uuid.uuid4())}, now=NOW)
    finally:
        pin_steward(node_dir, "steward-h1", public_key_text(STEWARD_KEY))
    assert reply["status"] != "ok"


@pytest.mark.parametrize(
    ("spec", "in_cohort"),
    [(HCC_SPEC, lambda p: p.hcc), (MI_SPEC, lambda p: True)],
    ids=["statistics", "regression-only"],
)
def test_differencing_is_refused_whichever_way_the_cohort_is_selected(
    analytics: AnalyticsWorker,
    study_node: tuple[Path, list[Person]],
    spec: dict[str, Any],
    in_cohort: Any,
) -> None:
    """The audit gets the cohort from the aggregate's own pass (statistics) or from a
    cohort query of its own (a regression alone): both refuse the narrowed repeat."""
    project = f"node-diff-{spec['statistics'][0]['kind']}"
    assert analytics.handle(_prepare(project, spec), now=NOW)["status"] == "ok"
    ages = sorted(p.age for p in study_node[1] if in_cohort(p))
    cut = next(a for a in reversed(ages) if 0 < sum(x > a - 1 for x in ages) < 5) - 1
    narrower = copy.deepcopy(spec)
    narrower["cohort"]["age"] = {"min": 0, "max": cut}
    reply = analytics.handle(_prepare(project, narrower), now=NOW)
    assert reply["status"] == "refused", reply
    assert "differ" in reply["reason"]


# -- analysis sessions: the node checks every further statistic itself ------------------


def _open_session(analytics: AnalyticsWorker, project_id: str) -> dict[str, Any]:
    """Prepare an analysis session (keep) whose task covers every variable of HCC_SPEC."""
    parsed = QuerySpec.parse(HCC_SPEC)
    request = _prepare(project_id, HCC_SPEC, variables=parsed.data_fields(every_variable=True))
    request["keep"] = True
    opened = analytics.handle(request, now=NOW)
    assert opened["status"] == "ok", opened.get("reason")
    return request


def _ask(
    analytics: AnalyticsWorker, request: dict[str, Any], round_no: int, **changes: Any
) -> dict[str, Any]:
    statistics = changes.pop("statistics", [{"id": "by_sex", "kind": "count", "by": ["sex"]}])
    spec = QuerySpec.parse({**HCC_SPEC, "statistics": statistics, **changes.pop("spec", {})})
    body = _mask(
        request["session"],
        _peers(analytics),
        round=round_no,
        part="ask",
        spec=spec.to_json(),
        token=changes.pop("token", request["token"]),
    )
    return analytics.handle({**body, **changes}, now=NOW)


def test_a_session_statistic_is_decided_computed_and_signed_by_the_node(
    analytics: AnalyticsWorker,
) -> None:
    request = _open_session(analytics, "node-session-ok")
    asked = _ask(analytics, request, 1001)
    assert asked["status"] == "ok", asked.get("reason")
    entries = [SignedEntry.from_bytes(base64.b64decode(e)).entry for e in asked["entries"]]
    assert [e.type.value for e in entries] == ["compute", "result"]  # decided, then masked
    assert entries[0].details["decision"] == "allow" and all(e.actor == "h1" for e in entries)
    assert asked["refusals"] == {} and len(asked["suppressed"]) > 0


def test_a_session_protects_each_answer_with_what_it_released_before(
    analytics: AnalyticsWorker,
) -> None:
    """The node keeps the cohort's released cells (medspace.analytics.released) from the
    opening on, and checks every further answer together with them."""
    request = _open_session(analytics, "node-session-released")
    record = analytics._sessions[request["session"]].released
    opened = len(record)
    assert opened > 0  # the opening's count cells
    first = _ask(analytics, request, 1001)
    assert first["status"] == "ok", first.get("reason")
    assert len(record) > opened  # the by-sex cells joined
    again = _ask(analytics, request, 1002)
    assert again["suppressed"] == first["suppressed"]  # the same question, the same answer


def test_one_shot_queries_and_sessions_about_one_cohort_share_what_was_released(
    analytics: AnalyticsWorker,
) -> None:
    """The record is the node's, per project and cohort, not the session's: a session
    opened after a one-shot query about the same patients starts from its cells."""
    fresh = _open_session(analytics, "node-release-fresh")
    opened_alone = len(analytics._sessions[fresh["session"]].released)
    by_sex = {**HCC_SPEC, "statistics": [{"id": "by_sex", "kind": "count", "by": ["sex"]}]}
    assert analytics.handle(_prepare("node-release-shared", by_sex), now=NOW)["status"] == "ok"
    shared = _open_session(analytics, "node-release-shared")
    assert len(analytics._sessions[shared["session"]].released) == opened_alone + 2


def test_queries_record_what_they_released_per_cohort_except_under_dp(
    analytics: AnalyticsWorker, node_dir: Path
) -> None:
    from medspace.analytics.release_book import ReleaseBook

    by_sex = {**HCC_SPEC, "statistics": [{"id": "by_sex", "kind": "count", "by": ["sex"]}]}
    assert analytics.handle(_prepare("node-record", by_sex), now=NOW)["status"] == "ok"
    dp_terms = {"disclosure": {"min_cell_size": 5, "dp_epsilon": "1"}}
    dp = analytics.handle(
        _prepare("node-record-dp", by_sex, terms=dp_terms, epsilon="0.1"), now=NOW
    )
    assert dp["status"] == "ok", dp.get("reason")
    book = ReleaseBook(node_dir / "analytics.db")
    assert book.cohorts("node-record") == 1  # kept on disk, for after a restart
    assert book.cohorts("node-record-dp") == 0  # the noise protects DP answers


def test_a_session_refuses_another_user_cohort_or_regression(
    analytics: AnalyticsWorker,
) -> None:
    request = _open_session(analytics, "node-session-scope")
    session = request["session"]
    carol = delegation(HUB_KEY, User("carol", Role.RESEARCHER), "analytics", session, NOW)
    assert "who opened" in _ask(analytics, request, 1001, token=carol)["reason"]
    other_cohort = {
        "cohort": {"filters": [{"domain": "condition", "system": "ICD-10", "code": "I10"}]}
    }
    assert "keep its cohort" in _ask(analytics, request, 1002, spec=other_cohort)["reason"]
    regression = [{"id": "m", "kind": "logistic", "outcome": "responded", "covariates": ["age"]}]
    assert "regression" in _ask(analytics, request, 1003, statistics=regression)["reason"]
    alice = User("alice", Role.RESEARCHER)
    forged = delegation(Ed25519PrivateKey.generate(), alice, "analytics", session, NOW)
    assert _ask(analytics, request, 1004, token=forged)["status"] == "denied"


def test_a_node_takes_only_a_delegation_for_this_session_never_a_bearer_token(
    analytics: AnalyticsWorker,
) -> None:
    request = _open_session(analytics, "node-session-delegation")
    alice = User("alice", Role.RESEARCHER)
    bearer = issue_token(HUB_KEY, alice, timedelta(hours=1), now=NOW)
    other = delegation(HUB_KEY, alice, "analytics", str(uuid.uuid4()), NOW)
    lookup = delegation(HUB_KEY, alice, "lookup", request["session"], NOW)
    for n, token in enumerate((bearer, other, lookup)):
        reply = _ask(analytics, request, 1001 + n, token=token)
        assert reply["status"] == "denied", token
    assert _ask(analytics, request, 1004)["status"] == "ok"
    prepare = _prepare("node-prepare-delegation", HCC_SPEC)
    assert analytics.handle({**prepare, "token": bearer}, now=NOW)["status"] == "denied"


def test_a_session_needs_a_cohort_kept_by_an_opening(analytics: AnalyticsWorker) -> None:
    request = _prepare("node-session-none", HCC_SPEC)  # a plain query: nothing kept
    assert analytics.handle(request, now=NOW)["status"] == "ok"
    asked = _ask(analytics, request, 1001)
    assert asked["status"] == "error" and "keeps no cohort" in asked["reason"]


def test_a_revocation_pushed_to_the_node_stops_the_session_there(
    analytics: AnalyticsWorker,
) -> None:
    """Even a hub that keeps asking: the node decides with its own copy of the project."""
    request = _open_session(analytics, "node-session-revoked")
    assert _ask(analytics, request, 1001)["status"] == "ok"
    state = ProjectState.parse(request["project"]).revoke(
        User("alice", Role.RESEARCHER), "stop the study", NOW
    )
    pushed = analytics.worker.handle_project({"project": state.model_dump(mode="json")}, NOW)
    assert pushed["status"] == "ok", pushed.get("reason")
    asked = _ask(analytics, request, 1002)
    assert asked["status"] == "denied" and "revoked" in asked["reason"]


def test_a_dp_node_charges_its_budget_when_it_contributes_not_when_it_prepares(
    analytics: AnalyticsWorker,
) -> None:
    # A query refused after the prepare (too few nodes, another node's refusal) costs
    # nothing at the hub; it must cost nothing here either, or the copies drift apart.
    from decimal import Decimal

    dp_terms = {"disclosure": {"min_cell_size": 5, "dp_epsilon": "1"}}
    budget = analytics._budget_store()
    first = _prepare("node-dp-spend", COUNTS, terms=dp_terms, epsilon="0.6")
    assert analytics.handle(first, now=NOW)["status"] == "ok"
    assert budget.spent("node-dp-spend") == 0  # prepared, never masked: not charged
    second = _prepare("node-dp-spend", COUNTS, terms=dp_terms, epsilon="0.6")
    assert analytics.handle(second, now=NOW)["status"] == "ok"
    masked = analytics.handle(_mask(second["session"], _peers(analytics)), now=NOW)
    assert masked["status"] == "ok", masked.get("reason")
    assert budget.spent("node-dp-spend") == Decimal("0.6")
    (entry,) = [SignedEntry.from_bytes(base64.b64decode(e)).entry for e in masked["entries"]]
    assert entry.details["epsilon_micros"] == 600_000
    # the first session, masked now, would overrun the budget: refused and ledgered
    late = analytics.handle(_mask(first["session"], _peers(analytics)), now=NOW)
    assert late["status"] == "refused" and "masked" not in late
    (refusal,) = [SignedEntry.from_bytes(base64.b64decode(e)).entry for e in late["entries"]]
    assert refusal.details["reason"] == "dp-budget"
    third = _prepare("node-dp-spend", COUNTS, terms=dp_terms, epsilon="0.6")
    assert analytics.handle(third, now=NOW)["status"] == "denied"  # its policy sees the spend
    assert budget.spent("node-dp-spend") == Decimal("0.6")


def test_a_dp_project_gets_no_session_at_the_node(analytics: AnalyticsWorker) -> None:
    parsed = QuerySpec.parse(HCC_SPEC)
    request = _prepare(
        "node-session-dp",
        HCC_SPEC,
        terms={"disclosure": {"min_cell_size": 5, "dp_epsilon": "1"}},
        variables=parsed.data_fields(every_variable=True),
        epsilon="0.1",
    )
    request["keep"] = True
    refused = analytics.handle(request, now=NOW)
    assert refused["status"] == "refused" and "differential-privacy" in refused["reason"]


def test_peers_are_verified_once_and_may_be_left_out_only_for_the_same_participants(
    analytics: AnalyticsWorker,
) -> None:
    request = _open_session(analytics, "node-session-peers")
    first = _mask(request["session"], _peers(analytics), round=1001, part="ask")
    del first["peers"]  # nothing verified yet: the node needs them
    spec = QuerySpec.parse({**HCC_SPEC, "statistics": [{"id": "n", "kind": "count"}]})
    first.update(spec=spec.to_json(), token=request["token"])
    assert "malformed mask request" in analytics.handle(first, now=NOW)["reason"]
    assert _ask(analytics, request, 1002)["status"] == "ok"  # peers sent and verified
    later = {**first, "round": 1003}
    assert analytics.handle(later, now=NOW)["status"] == "ok"  # the verified peers reused
    fewer = {**first, "round": 1004, "participants": ["h1", "h2"]}
    assert "malformed mask request" in analytics.handle(fewer, now=NOW)["reason"]


# -- which steps the node answers on its event loop ------------------------------------


def test_only_light_steps_are_answered_on_the_event_loop(analytics: AnalyticsWorker) -> None:
    """Unmasking and a session's small statistic are light; a prepare, a regression step
    and a large table run in a worker thread, so that they never hold up a lookup."""
    request = _open_session(analytics, "node-session-light")

    def ask(statistics: list[dict[str, Any]]) -> dict[str, Any]:
        spec = QuerySpec.parse({**HCC_SPEC, "statistics": statistics})
        body = _mask(request["session"], _peers(analytics), part="ask", spec=spec.to_json())
        return {**body, "token": request["token"]}

    small = ask([{"id": "by_sex", "kind": "count", "by": ["sex"]}])
    assert analytics.light(small)
    assert analytics.light({"op": "unmask", "session": request["session"], "round": 1})
    assert analytics.light({**small, "part": "local"})
    assert not analytics.light(request)  # the prepare: SQL over the store
    assert not analytics.light({**small, "part": "mi_model", "beta": ["0.0"]})
    bands = [{"label": str(a), "min": a, "max": a} for a in range(0, 40)]
    wide = {**HCC_SPEC["variables"], "age_one": {"kind": "age_band", "bands": bands}}
    large = QuerySpec.parse(
        {
            **HCC_SPEC,
            "variables": wide,
            "statistics": [{"id": "t", "kind": "count", "by": ["age_one", "sex"]}],
        }
    )
    assert len(layout(large)) > LIGHT_CELLS
    assert not analytics.light({**small, "spec": large.to_json()})
    assert analytics.light({**small, "spec": "not a spec"}) is False


def test_the_node_refuses_an_exact_mean_of_a_zero_one_variable(
    analytics: AnalyticsWorker,
) -> None:
    """The mean of 'responded' carries its sum, the number who responded, in a value cell
    no minimum cell size protects: the node refuses it itself, whatever the hub let
    through, and ledgers the refusal."""
    spec = {**HCC_SPEC, "statistics": [{"id": "m", "kind": "mean", "variable": "responded"}]}
    reply = analytics.handle(_prepare("node-binary-mean", spec), now=NOW)
    assert reply["status"] == "refused" and "proportion" in reply["reason"]
    entries = [SignedEntry.from_bytes(base64.b64decode(e)).entry for e in reply["entries"]]
    assert any(e.details.get("reason") == "binary-sum" for e in entries)
