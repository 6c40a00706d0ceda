"""`make demo`'s network part: a real hub and real nodes as separate processes on loopback.

A researcher files a project, two stewards approve, one denies with a reason, the count
runs on the approving nodes only, and the ledger is verified over the hub's API against
the log key printed at `hub init`. Every step is printed; every process is stopped at the
end, also on failure.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from medspace.hub import HubClient, HubCore, HubError, HubUnreachable, init_hub, verify_remote
from medspace.identity import Role, User, init_certs, public_key_text
from medspace.identity.userkeys import user_key_path
from medspace.node import open_node
from medspace.node.standing import POLICY_FILE, save_node_policy
from medspace.policy import NodePolicy, Purpose

DEADLINE = 120.0
_CLI = [sys.executable, "-m", "medspace"]


class DemoError(HubError):
    """A demo step did not complete; the message says which."""


@dataclass(frozen=True)
class RunningNetwork:
    """What a later demo step (the analytics study, the lookup) needs from the running
    network: its URL, the demo password, the nodes, a work directory and a client
    factory that logs a user in with their own signing key."""

    url: str
    password: str
    nodes: dict[str, Path]
    workdir: Path
    client: Callable[[str], HubClient]


Step = Callable[[RunningNetwork], None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(check: Callable[[], Any], what: str, processes: list[subprocess.Popen[bytes]]) -> Any:
    end = time.monotonic() + DEADLINE
    while True:
        for process in processes:
            if process.poll() is not None:
                raise DemoError(f"a process exited early while waiting for {what}; see the logs")
        try:
            value = check()
        except HubUnreachable:
            value = None
        if value:
            return value
        if time.monotonic() > end:
            raise DemoError(f"gave up waiting for {what} after {DEADLINE:g} s; see the logs")
        time.sleep(0.2)


def _terms(nodes: list[str]) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": "diabetes-prevalence",
        "title": "Type 2 diabetes prevalence",
        "purpose": "HRESCH",
        "description": "Count patients with type 2 diabetes (ICD-10 E11) at each hospital.",
        "cohort": {"condition_codes": ["E11"], "code_system": "ICD-10"},
        "variables": ["condition.code"],
        "computations": ["count"],
        "disclosure": {"min_cell_size": 10},
        "nodes": nodes,
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "expires_at": (now + timedelta(days=90)).isoformat(),
    }


def _setup_hub(console: Console, hub_dir: Path, names: dict[str, Path], password: str) -> str:
    init_hub(hub_dir)
    core = HubCore(hub_dir)
    try:
        core.add_user(User("admin", Role.ADMIN), password)
        core.add_user(User("alice", Role.RESEARCHER), password)
        core.add_user(User("auditor", Role.AUDITOR), password)
        for name, node_dir in names.items():
            core.add_user(User(f"steward-{name}", Role.STEWARD, name), password)
            with open_node(node_dir) as node:
                core.register_node(name, public_key_text(node.identity_public_key))
        log_key = core.log_signer.verifier.vkey
    finally:
        core.close()
    console.print(f"[bold]1.[/] hub created; nodes {', '.join(names)} registered; users added")
    return log_key


def demo(
    console: Console,
    workdir: Path,
    node_dirs: list[Path],
    *,
    tls: bool = False,
    steps: Sequence[Step] = (),
) -> None:
    """Run the network demo with a hub in `workdir/hub` and the given (ingested) nodes;
    `steps` run after the count, before the ledger is verified (so it covers them)."""
    workdir = Path(workdir).absolute()
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    names: dict[str, Path] = {}
    for directory in node_dirs:
        with open_node(directory) as node:
            names[node.name] = Path(directory).absolute()
    for name, directory in names.items():
        if not (directory / POLICY_FILE).exists():
            save_node_policy(
                directory,
                NodePolicy(
                    node=name,
                    min_cell_floor=10,
                    allowed_purposes=frozenset({Purpose.HRESCH}),
                    allowed_computations=frozenset({"count"}),
                ),
            )
    password = secrets.token_urlsafe(16)
    log_key = _setup_hub(console, workdir / "hub", names, password)
    port = _free_port()
    scheme = "https" if tls else "http"
    url = f"{scheme}://127.0.0.1:{port}"
    hub_cmd = [*_CLI, "hub", "serve", "--hub", str(workdir / "hub"), "--port", str(port)]
    ca: str | None = None
    if tls:
        bundle = init_certs(workdir / "certs", ["127.0.0.1", "localhost"])
        ca = str(bundle.ca.cert)
        hub_cmd += ["--tls-cert", str(bundle.hub.cert), "--tls-key", str(bundle.hub.key)]
    processes: list[subprocess.Popen[bytes]] = []
    handles = []
    try:
        out = open(logs / "hub.log", "wb")  # noqa: SIM115 (closed in finally)
        handles.append(out)
        processes.append(subprocess.Popen(hub_cmd, stdout=out, stderr=subprocess.STDOUT))

        key_home = workdir / "user-keys"  # each user's own machine, in the demo

        def client(user: str | None = None) -> HubClient:
            c = HubClient(url, ca_file=ca)
            if user:
                c.login(user, password)
                c.ensure_user_key(user, key_home)  # created and registered on first login
            return c

        admin = _wait(lambda: client("admin"), "the hub to answer", processes)
        console.print(f"[bold]2.[/] hub serving at {url} (process {processes[0].pid})")
        for name, directory in names.items():
            cmd = [*_CLI, "node", "serve", "--node", str(directory), "--hub", url]
            if ca:
                cmd += ["--ca", ca]
            out = open(logs / f"node-{name}.log", "wb")  # noqa: SIM115
            handles.append(out)
            processes.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT))
        _wait(
            lambda: all(n["connected"] for n in admin.get("/nodes")),
            "every node to connect",
            processes,
        )
        console.print(f"[bold]3.[/] {len(names)} nodes connected (outbound channels)")
        nodes = sorted(names)
        for name, directory in names.items():
            steward = f"steward-{name}"
            client(steward).close()
            public = user_key_path(key_home, url, steward).with_suffix(".pub")
            pin = [*_CLI, "node", "steward", "add", "--node", str(directory)]
            subprocess.run(
                [*pin, "--user", steward, "--key", str(public)],
                check=True,
                capture_output=True,
            )
        console.print(
            "   stewards logged in (each created an Ed25519 signing key) and were pinned "
            "at their nodes with `medspace node steward add`"
        )
        alice = client("alice")
        alice.post("/projects", _terms(nodes))
        console.print("[bold]4.[/] researcher alice filed project diabetes-prevalence (HRESCH)")
        approving, denying = nodes[:-1], nodes[-1]
        for name in approving:
            client(f"steward-{name}").post(
                "/projects/diabetes-prevalence/approve", {"reason": "ethics approval on file"}
            )
            console.print(f"[bold]5.[/] steward of {name} approved")
        client(f"steward-{denying}").post(
            "/projects/diabetes-prevalence/deny",
            {"reason": "our ethics board has not reviewed this study yet"},
        )
        console.print(f"[bold]6.[/] steward of {denying} denied, with a reason")
        answer = alice.post("/projects/diabetes-prevalence/count")
        table = Table("node", "status", "patients with E11")
        for row in answer["results"]:
            table.add_row(row["node"], row["status"], row.get("display", "-"))
        console.print("[bold]7.[/] count ran on the approving nodes only:")
        console.print(table)
        ran = [r["node"] for r in answer["results"] if r["status"] == "ok"]
        if ran != approving:
            raise DemoError(f"the count ran on {ran}, expected exactly {approving}")
        running = RunningNetwork(url, password, dict(names), workdir, client)
        for step in steps:
            step(running)
        auditor = client("auditor")
        # Reading the ledger is itself ledgered, so wait for a final checkpoint over every
        # entry up to the count, not over the auditor's own reads.
        target = int(auditor.get("/ledger/entries", limit=1)["size"])

        def verified() -> Any:
            verdict = verify_remote(auditor, log_key=log_key)
            if not verdict.ok:
                raise DemoError("audit verify FAILED: " + "; ".join(verdict.findings[:3]))
            final = verdict.final_size
            return verdict if final is not None and final >= target else None

        verdict = _wait(verified, "a final checkpoint over every entry", processes)
        console.print(f"[bold]8.[/] audit verify: [bold green]{verdict.summary()}[/]")
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for handle in handles:
            handle.close()
