"""The project flow over a real hub and real node channels (in-process threads)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.hub.support import network, project_terms, wait_until

from medspace.hub import HubRequestError


def test_count_runs_only_on_approving_nodes_with_small_cells_suppressed(tmp_path: Path) -> None:
    with network(tmp_path, {"h1": (12, 7), "h2": (10, 2), "h3": (6, 4)}) as (hub, _nodes, _):
        alice = hub.client("alice")
        alice.post("/projects", project_terms("diabetes-1", ["h1", "h2", "h3"]))
        hub.client("steward-h1").post("/projects/diabetes-1/approve", {"reason": "ethics ok"})
        hub.client("steward-h2").post("/projects/diabetes-1/approve", {"reason": "ethics ok"})
        state = hub.client("steward-h3").post(
            "/projects/diabetes-1/deny", {"reason": "no capacity this quarter"}
        )
        assert state["status"] == "active"
        answer = alice.post("/projects/diabetes-1/count")
        rows = {r["node"]: r for r in answer["results"]}
        assert rows["h1"]["status"] == "ok" and rows["h1"]["count"] == 7
        # h2 has 2 diabetic patients; the node's floor (5) beats the project's 3.
        assert rows["h2"]["count"] is None and rows["h2"]["display"] == "<5"
        assert rows["h3"]["status"] == "denied"
        assert answer["partial"] is False
        # Revocation stops new tasks at once; the hub says why per node.
        alice.post("/projects/diabetes-1/revoke", {"reason": "study withdrawn"})
        after = {r["node"]: r for r in alice.post("/projects/diabetes-1/count")["results"]}
        assert after["h1"]["status"] == "refused" and "revoked" in after["h1"]["reason"]


def test_steward_cannot_approve_for_another_node(tmp_path: Path) -> None:
    with network(tmp_path, {"h1": (3, 1), "h2": (3, 1)}) as (hub, _nodes, _):
        hub.client("alice").post("/projects", project_terms("other-node", ["h1", "h2"]))
        with pytest.raises(HubRequestError, match="own node") as refused:
            hub.client("steward-h1").post(
                "/projects/other-node/approve", {"reason": "ok", "node": "h2"}
            )
        assert refused.value.http_status == 403


def test_checkpoints_become_final_with_witness_cosignatures(tmp_path: Path) -> None:
    with network(tmp_path, {"h1": (3, 1), "h2": (3, 1), "h3": (3, 1)}) as (hub, _nodes, _):
        hub.client("alice").post("/projects", project_terms("cp-test", ["h1", "h2", "h3"]))
        core = hub.app.state.core
        quorum = core.quorum()

        def final_covers_all() -> bool:
            final = core.log.final_checkpoint(quorum)
            return final is not None and final.checkpoint.size == core.log.size()

        wait_until(final_covers_all, "a final checkpoint covering every entry")


@pytest.mark.postgres
def test_hub_runs_on_postgresql(tmp_path: Path, pg_schema_url: str) -> None:
    with network(tmp_path, {"h1": (8, 6)}, db_url=pg_schema_url) as (hub, _nodes, _):
        alice = hub.client("alice")
        alice.post("/projects", project_terms("on-postgres", ["h1"]))
        hub.client("steward-h1").post("/projects/on-postgres/approve", {"reason": "fine"})
        answer = alice.post("/projects/on-postgres/count")
        assert answer["results"][0]["count"] == 6
        core = hub.app.state.core
        assert core.engine.dialect.name == "postgresql"
