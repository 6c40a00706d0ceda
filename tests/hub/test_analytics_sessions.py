"""Analysis sessions through the HTTP API (hub and nodes in threads, loopback sockets):
the cohort is selected once, each further statistic equals what a query over the same
cohort gives, and only the session's owner, kinds and variables are allowed; a
revocation, a changed opt-out or a closed session stops it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.hub.analytics_support import (
    HCC_SPEC,
    Person,
    StudyNetwork,
    ledger_entries,
    study_network,
)
from tests.hub.support import wait_until

from medspace.hub import HubRequestError, analytics_sessions
from medspace.node.standing import CONSENT_FILE, save_consent

NODES = {"h1": (90, 11), "h2": (80, 12), "h3": (70, 13)}
OPENING: dict[str, Any] = {
    **HCC_SPEC,
    "statistics": [
        {"id": "patients", "kind": "count"},
        {"id": "age", "kind": "mean", "variable": "age"},
        {"id": "bands", "kind": "table", "variables": ["age_band", "sex"]},
        {"id": "rate", "kind": "proportion", "variable": "responded"},
    ],
}
FURTHER: list[dict[str, Any]] = [
    {"id": "age_by_band", "kind": "mean", "variable": "age", "by": ["age_band"]},
    {"id": "by_sex", "kind": "count", "by": ["sex"]},
    {"id": "response", "kind": "table", "variables": ["age_band", "response"]},
    {"id": "rate_by_sex", "kind": "proportion", "variable": "responded", "by": ["sex"]},
]


@pytest.fixture(scope="module")
def study(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[StudyNetwork, dict[str, list[Person]]]]:
    with study_network(tmp_path_factory.mktemp("sessions"), NODES) as running:
        yield running


def _results(answer: dict[str, Any]) -> dict[str, Any]:
    return {s["id"]: s["rows"] for s in answer["result"]["statistics"]}


def test_each_further_statistic_equals_a_query_over_the_same_cohort(study: Any) -> None:
    net, _people = study
    alice = net.project("hcc-session")
    opened = alice.open_session("hcc-session", OPENING)
    assert opened["status"] == "completed", opened["nodes"]
    session = opened["session"]["id"]
    assert _results(opened) == _results(alice.run_query("hcc-session", OPENING))
    for statistic in FURTHER:
        asked = alice.ask_session("hcc-session", session, [statistic])
        assert asked["status"] == "completed", asked["nodes"]
        assert asked["task"] == session and asked["session"]["asks"] >= 1
        alone = alice.run_query("hcc-session", {**OPENING, "statistics": [statistic]})
        assert _results(asked) == _results(alone), statistic["id"]
    several = alice.ask_session("hcc-session", session, FURTHER)
    assert set(_results(several)) == {s["id"] for s in FURTHER}
    alice.close_session("hcc-session", session)


def test_every_statistic_is_decided_and_ledgered_at_hub_and_nodes(study: Any) -> None:
    net, _people = study
    alice = net.project("hcc-session-ledger")
    session = alice.open_session("hcc-session-ledger", OPENING)["session"]["id"]
    before = len(ledger_entries(net.hub.client("bob"), "hcc-session-ledger"))
    asked = alice.ask_session("hcc-session-ledger", session, FURTHER[:1])
    entries = ledger_entries(net.hub.client("bob"), "hcc-session-ledger")[before:]
    hub_decisions = [e for e in entries if e.actor == "hub" and e.type.value == "task"]
    assert sorted(e.node for e in hub_decisions) == sorted(NODES)
    assert all(e.details["decision"] == "allow" for e in hub_decisions)
    node_decisions = {e.actor for e in entries if e.type.value == "compute"}
    node_results = {e.actor for e in entries if e.type.value == "result" and e.actor != "hub"}
    assert node_decisions == node_results == set(NODES)
    result = [e for e in entries if e.type.value == "result" and e.actor == "hub"][-1]
    assert result.details["task"] == session and result.details["status"] == "completed"
    assert len(asked["ledger_entries"]) == len(entries)
    assert "Family" not in repr(entries) and "Given" not in repr(entries)  # no identities
    alice.close_session("hcc-session-ledger", session)


def test_a_session_only_answers_its_owner_kinds_and_variables(study: Any) -> None:
    net, _people = study
    alice = net.project("hcc-session-scope")
    session = alice.open_session("hcc-session-scope", OPENING)["session"]["id"]
    path = f"/projects/hcc-session-scope/sessions/{session}/statistics"
    for user in ("bob", "steward-h1"):
        with pytest.raises(HubRequestError, match="no open analysis session") as denied:
            net.hub.client(user).post(path, {"statistics": FURTHER[:1]})
        assert denied.value.http_status == 404
    histogram = {"id": "h", "kind": "histogram", "variable": "age", "edges": [40, 60]}
    with pytest.raises(HubRequestError, match="opened for count, mean, proportion, table"):
        alice.ask_session("hcc-session-scope", session, [histogram])
    unknown = {"id": "x", "kind": "mean", "variable": "hba1c"}
    with pytest.raises(HubRequestError, match="variable hba1c is not defined"):
        alice.ask_session("hcc-session-scope", session, [unknown])
    regression = {"id": "m", "kind": "logistic", "outcome": "responded", "covariates": ["age"]}
    with pytest.raises(HubRequestError):
        alice.ask_session("hcc-session-scope", session, [regression])
    with pytest.raises(HubRequestError, match="no open analysis session"):
        alice.ask_session("another-project", session, FURTHER[:1])
    alice.close_session("hcc-session-scope", session)


def test_a_logged_out_researcher_asks_nothing_more_until_she_logs_in_again(study: Any) -> None:
    # The nodes get one delegation for several statistics of a session; the hub checks
    # the researcher's own token, revocation included, on every ask all the same.
    net, _people = study
    alice = net.project("hcc-session-logout")
    session = alice.open_session("hcc-session-logout", OPENING)["session"]["id"]
    for _ in range(2):
        assert alice.ask_session("hcc-session-logout", session, FURTHER[:1])["status"] == (
            "completed"
        )
    alice.post("/auth/logout")
    with pytest.raises(HubRequestError) as refused:
        alice.ask_session("hcc-session-logout", session, FURTHER[:1])
    assert refused.value.http_status == 401
    again = net.hub.client("alice")
    assert again.ask_session("hcc-session-logout", session, FURTHER[:1])["status"] == "completed"
    again.close_session("hcc-session-logout", session)


def test_a_closed_session_is_gone_at_hub_and_nodes(study: Any) -> None:
    net, _people = study
    alice = net.project("hcc-session-close")
    session = alice.open_session("hcc-session-close", OPENING)["session"]["id"]
    alice.close_session("hcc-session-close", session)
    with pytest.raises(HubRequestError, match="no open analysis session"):
        alice.ask_session("hcc-session-close", session, FURTHER[:1])
    for thread in net.nodes.values():
        worker = thread.service._analytics
        assert worker is not None and session not in worker._sessions


def _ended(alice: Any, project: str, session: str, asked: dict[str, Any], gone: str) -> None:
    """The session ended at this ask: statistics summed over the hospitals that remain
    could be compared with the earlier sums, which include the one that left."""
    assert asked["status"] == "refused" and asked["result"] is None
    assert f"hospital(s) {gone} dropped out or left" in asked["reason"]
    assert asked["session"]["open"] is False
    with pytest.raises(HubRequestError, match="no open analysis session"):
        alice.ask_session(project, session, FURTHER[1:2])


def test_a_withdrawn_node_ends_the_session_at_its_next_statistic(study: Any) -> None:
    net, _people = study
    alice = net.project("hcc-session-withdraw")
    session = alice.open_session("hcc-session-withdraw", OPENING)["session"]["id"]
    net.hub.client("steward-h3").post(
        "/projects/hcc-session-withdraw/revoke", {"reason": "consent audit"}
    )
    asked = alice.ask_session("hcc-session-withdraw", session, FURTHER[:1])
    rows = {r["node"]: r for r in asked["nodes"]}
    assert rows["h3"]["status"] == "denied" and "withdrew its approval" in rows["h3"]["reason"]
    _ended(alice, "hcc-session-withdraw", session, asked, "h3")
    reopened = alice.open_session("hcc-session-withdraw", OPENING)  # over h1 and h2
    assert reopened["result"]["nodes"] == ["h1", "h2"]
    alice.close_session("hcc-session-withdraw", reopened["session"]["id"])


def test_an_opt_out_during_a_session_stops_that_node_from_answering(study: Any) -> None:
    net, _people = study
    alice = net.project("hcc-session-consent")
    session = alice.open_session("hcc-session-consent", OPENING)["session"]["id"]
    consent = net.dirs["h2"] / CONSENT_FILE
    assert not consent.exists()
    node = net.nodes["h2"].service._node
    save_consent(net.dirs["h2"], {node.store.pseudonym("h2-P0"): ["HRESCH"]})
    try:
        asked = alice.ask_session("hcc-session-consent", session, FURTHER[:1])
    finally:
        consent.unlink()
    rows = {r["node"]: r for r in asked["nodes"]}
    assert rows["h2"]["status"] == "refused" and "opt-outs changed" in rows["h2"]["reason"]
    _ended(alice, "hcc-session-consent", session, asked, "h2")


def test_a_node_that_stops_mid_session_ends_the_session(study: Any) -> None:
    net, _people = study
    alice = net.project("hcc-session-drop")
    session = alice.open_session("hcc-session-drop", OPENING)["session"]["id"]
    net.stop_node("h1")
    try:
        asked = alice.ask_session("hcc-session-drop", session, FURTHER[:1])
    finally:
        net.start_node("h1")
    assert asked["missing"] == ["h1"]
    _ended(alice, "hcc-session-drop", session, asked, "h1")


def test_a_researcher_holds_a_few_sessions_at_once(study: Any) -> None:
    net, _people = study
    alice = net.project("hcc-session-limit")
    opened = [alice.open_session("hcc-session-limit", OPENING)["session"]["id"] for _ in range(4)]
    with pytest.raises(HubRequestError, match="4 analysis sessions open, the limit"):
        alice.open_session("hcc-session-limit", OPENING)
    for session in opened:
        alice.close_session("hcc-session-limit", session)
    alice.close_session(
        "hcc-session-limit", alice.open_session("hcc-session-limit", OPENING)["session"]["id"]
    )


def test_a_dp_project_offers_no_sessions(study: Any) -> None:
    net, _people = study
    alice = net.project("hcc-session-dp", disclosure={"min_cell_size": 5, "dp_epsilon": "1"})
    with pytest.raises(HubRequestError, match="differential privacy") as refused:
        alice.open_session("hcc-session-dp", OPENING)
    assert refused.value.http_status == 400


def test_an_idle_session_expires_at_hub_and_nodes(
    study: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    net, _people = study
    alice = net.project("hcc-session-idle")
    session = alice.open_session("hcc-session-idle", OPENING)["session"]["id"]
    monkeypatch.setattr(analytics_sessions, "SESSION_IDLE", 0.0)
    with pytest.raises(HubRequestError, match="expired after its idle time") as gone:
        alice.ask_session("hcc-session-idle", session, FURTHER[:1])
    assert gone.value.http_status == 404

    def dropped() -> bool:
        return all(
            session not in thread.service._analytics._sessions for thread in net.nodes.values()
        )

    wait_until(dropped, "the nodes to drop the expired session")
