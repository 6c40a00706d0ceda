"""The hub operator's commands and `audit verify --db`, run through Typer's CliRunner."""

from __future__ import annotations

from pathlib import Path

from tests.hub.support import make_node, network, project_terms
from typer.testing import CliRunner

from medspace.cli import app

runner = CliRunner()


def test_hub_init_add_user_and_add_node(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    result = runner.invoke(app, ["hub", "init", str(hub)])
    assert result.exit_code == 0, result.output
    assert "log key" in result.output
    again = runner.invoke(app, ["hub", "init", str(hub)])
    # Rich wraps at 80 columns wherever the temporary path happens to end.
    assert again.exit_code != 0 and "already holds a hub" in " ".join(again.output.split())
    added = runner.invoke(
        app,
        [
            "hub",
            "add-user",
            "--hub",
            str(hub),
            "st1",
            "--role",
            "steward",
            "--node",
            "h1",
            "--password-stdin",
        ],
        input="a long enough password\n",
    )
    assert added.exit_code == 0, added.output
    unbound = runner.invoke(
        app,
        ["hub", "add-user", "--hub", str(hub), "st2", "--role", "steward", "--password-stdin"],
        input="a long enough password\n",
    )
    assert unbound.exit_code == 2 and "bound to one node" in unbound.output
    node = make_node(tmp_path / "h1", "h1", 2, 1)
    registered = runner.invoke(
        app, ["hub", "add-node", "--hub", str(hub), "h1", "--node-dir", str(node)]
    )
    assert registered.exit_code == 0, registered.output
    bad = runner.invoke(
        app, ["hub", "add-node", "--hub", str(hub), "h2", "--public-key", "bm9wZQ=="]
    )
    assert bad.exit_code == 2 and "32 bytes" in bad.output


def test_audit_verify_db_passes_then_catches_a_changed_entry(tmp_path: Path) -> None:
    import sqlite3

    with network(tmp_path, {"h1": (3, 1)}) as (hub, _nodes, _):
        hub.client("alice").post("/projects", project_terms("audit-db", ["h1"]))
        core = hub.app.state.core
        size = core.log.size()
        quorum = core.quorum()
        from tests.hub.support import wait_until

        wait_until(
            lambda: (f := core.log.final_checkpoint(quorum)) and f.checkpoint.size >= size,
            "a final checkpoint",
        )
    db = tmp_path / "hub" / "hub.db"
    ok = runner.invoke(app, ["audit", "verify", "--db", str(db)])
    assert ok.exit_code == 0, ok.output
    assert "VERIFIED" in ok.output
    with sqlite3.connect(db) as conn:
        # The researcher's signed request (entry 0 is her key registration).
        idx, body = next(
            (i, b)
            for i, b in conn.execute("select idx, body from ledger_entries order by idx")
            if b'"type":"request"' in bytes(b)
        )
        conn.execute(
            "update ledger_entries set body = ? where idx = ?",
            (bytes(body).replace(b'"request"', b'"approval"'), idx),
        )
    tampered = runner.invoke(app, ["audit", "verify", "--db", str(db)])
    assert tampered.exit_code == 11
    assert "FAILED" in tampered.output
