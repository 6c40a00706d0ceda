"""End to end: a hub and three study nodes as separate processes on loopback; a
researcher runs `medspace query run` from the command line, which prints the result and
writes the HTML report with its JSON twin, naming the ledger entries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from tests.hub.analytics_support import HCC_SPEC, make_study_node, study_terms

from medspace.analytics.report import read_report
from medspace.network_demo import RunningNetwork, demo

NODES = {"h1": (70, 11), "h2": (60, 12), "h3": (50, 13)}


def _cli(args: list[str], home: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MEDSPACE_HOME": str(home), "COLUMNS": "160"}
    return subprocess.run(
        [sys.executable, "-m", "medspace", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def _approved_and_logged_in(network: RunningNetwork, project: str) -> Path:
    """Alice files `project` on every node, each steward approves, and alice logs in from
    the command line; her MEDSPACE_HOME (the CLI finds her signing key there, where her
    first login made it)."""
    names = sorted(network.nodes)
    with network.client("alice") as alice:
        alice.post("/projects", study_terms(project, names))
    for name in names:
        with network.client(f"steward-{name}") as steward:
            steward.post(f"/projects/{project}/approve", {"reason": "ethics approval on file"})
    home = network.workdir / "user-keys"
    login = _cli(
        ["login", "--hub", network.url, "--user", "alice", "--password-stdin"],
        home,
        network.password + "\n",
    )
    assert login.returncode == 0, login.stdout + login.stderr
    return home


def test_query_run_from_the_command_line_prints_and_writes_the_report(tmp_path: Path) -> None:
    dirs = [make_study_node(tmp_path / n, n, p, seed)[0] for n, (p, seed) in NODES.items()]
    spec_file = tmp_path / "hcc.json"
    spec_file.write_text(json.dumps(HCC_SPEC))
    seen: dict[str, Any] = {}

    def study(network: RunningNetwork) -> None:
        home = _approved_and_logged_in(network, "hcc-cli")
        seen["run"] = _cli(
            [
                "query",
                "run",
                str(spec_file),
                "--project",
                "hcc-cli",
                "--report",
                str(tmp_path / "r"),
            ],
            home,
        )

    demo(Console(record=True, width=120), tmp_path / "net", dirs, steps=[study])
    run = seen["run"]
    assert run.returncode == 0, run.stdout + run.stderr
    assert "contributed" in run.stdout
    assert "report:" in run.stdout and "ledger entries:" in run.stdout
    report = read_report(tmp_path / "r" / "report.json")
    assert report.contributed == ("h1", "h2", "h3")
    assert not report.partial
    assert report.ledger_entries
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert "h1" in html and "<svg" in html


def test_an_analysis_session_from_the_command_line(tmp_path: Path) -> None:
    """`query session open` prints the statistics and the session id; `ask` answers more
    (a list, or {"statistics": [...]}), refuses a kind the opening did not ask for, saying
    why, and after `close` the session is gone."""
    dirs = [make_study_node(tmp_path / n, n, p, seed)[0] for n, (p, seed) in NODES.items()]
    spec_file = tmp_path / "hcc.json"
    spec_file.write_text(json.dumps(HCC_SPEC))
    again = tmp_path / "again.json"
    again.write_text(json.dumps([{"id": "age_again", "kind": "mean", "variable": "age"}]))
    outside = tmp_path / "outside.json"
    outside.write_text(
        json.dumps({"statistics": [{"id": "v", "kind": "variance", "variable": "age"}]})
    )
    seen: dict[str, Any] = {}

    def study(network: RunningNetwork) -> None:
        home = _approved_and_logged_in(network, "hcc-session")
        opened = _cli(
            ["query", "session", "open", str(spec_file), "--project", "hcc-session"], home
        )
        seen["open"] = opened
        session = opened.stdout.split("session: ")[-1].split()[0]
        where = ["--project", "hcc-session", "--session", session]
        seen["ask"] = _cli(["query", "session", "ask", str(again), *where], home)
        seen["outside"] = _cli(["query", "session", "ask", str(outside), *where], home)
        seen["close"] = _cli(["query", "session", "close", *where], home)
        seen["after"] = _cli(["query", "session", "ask", str(again), *where], home)

    demo(Console(record=True, width=120), tmp_path / "net", dirs, steps=[study])
    opened, ask, outside, close, after = (
        seen[k] for k in ("open", "ask", "outside", "close", "after")
    )
    assert opened.returncode == 0, opened.stdout + opened.stderr
    assert "contributed" in opened.stdout and "session: " in opened.stdout
    assert ask.returncode == 0, ask.stdout + ask.stderr
    assert "age_again" in ask.stdout and "ledger entries:" in ask.stdout
    assert outside.returncode != 0
    assert "variance needs a session (or query) that asks for it" in outside.stdout + outside.stderr
    assert close.returncode == 0 and "closed" in close.stdout
    assert after.returncode != 0
    assert "no open analysis session" in after.stdout + after.stderr
