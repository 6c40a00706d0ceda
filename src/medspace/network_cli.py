"""The network commands: `login`, `project ...`, `query count`, `audit ...`, `certs init`
and `node serve` (mounted by `medspace.cli`). They talk to the hub over its API with the
session stored by `medspace login` ($MEDSPACE_HOME, default ~/.medspace)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from medspace.errors import MedSpaceError, UsageError
from medspace.hub.cli import fail, read_password

console = Console()
project_app = typer.Typer(
    help="File, inspect, approve, deny and revoke projects.", no_args_is_help=True
)
query_app = typer.Typer(help="Run computations on approved projects.", no_args_is_help=True)
audit_app = typer.Typer(help="Verify and inspect the ledger.", no_args_is_help=True)
certs_app = typer.Typer(help="A small CA for TLS between hub and nodes.", no_args_is_help=True)


def _client() -> Any:
    from medspace.hub.client import HubClient

    return HubClient.from_session()


def login(
    hub: Annotated[str, typer.Option("--hub", help="The hub URL, e.g. https://hub:8443.")],
    user: Annotated[str, typer.Option("--user", help="Your user name.")],
    ca_file: Annotated[
        Path | None, typer.Option("--ca", help="CA certificate to trust for https.")
    ] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
) -> None:
    """Log in to the hub and store the token (expires; log in again when it does)."""
    from medspace.hub.client import HubClient, Session, save_session

    try:
        password = read_password(password_stdin)
        ca = str(ca_file.absolute()) if ca_file else None
        with HubClient(hub, ca_file=ca) as client:
            token = client.login(user, password)
        path = save_session(Session(hub, token, ca))
    except MedSpaceError as error:
        fail(error)
    console.print(f"logged in as [bold]{user}[/] (session in {path})")


def _print_state(state: dict[str, Any]) -> None:
    project = state["project"]
    console.print(
        f"[bold]{project['id']}[/] {project['title']} — {state['status']} "
        f"(purpose {project['purpose']}, owner {project['owner']})",
        highlight=False,
    )
    table = Table("node", "verdict", "steward", "reason", "contract hash")
    verdicts = {v["node"]: v for v in state["verdicts"]}
    for node in project["nodes"]:
        v = verdicts.get(node)
        if v is None:
            table.add_row(node, "pending", "", "", "")
        else:
            table.add_row(
                node, v["verdict"], v["steward"], v["reason"], (v["contract_hash"] or "")[:16]
            )
    console.print(table)


@project_app.command("create")
def project_create(
    file: Annotated[Path, typer.Option("--file", help="The project terms as JSON.")],
) -> None:
    """File a project (you become its owner); each node's steward then decides."""
    try:
        try:
            terms = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read {file} as JSON ({type(exc).__name__})") from None
        with _client() as client:
            _print_state(client.post("/projects", terms))
    except MedSpaceError as error:
        fail(error)


@project_app.command("show")
def project_show(project_id: Annotated[str, typer.Argument(help="The project id.")]) -> None:
    """Show a project and every node's verdict."""
    try:
        with _client() as client:
            _print_state(client.get(f"/projects/{project_id}"))
    except MedSpaceError as error:
        fail(error)


@project_app.command("list")
def project_list() -> None:
    """List the projects you may see."""
    try:
        with _client() as client:
            states = client.get("/projects")
    except MedSpaceError as error:
        fail(error)
    table = Table("id", "title", "status", "owner", "nodes")
    for s in states:
        p = s["project"]
        table.add_row(p["id"], p["title"], s["status"], p["owner"], ", ".join(p["nodes"]))
    console.print(table)


def _verdict(action: str, project_id: str, reason: str, node: str | None) -> None:
    try:
        with _client() as client:
            state = client.post(
                f"/projects/{project_id}/{action}", {"reason": reason, "node": node}
            )
        _print_state(state)
    except MedSpaceError as error:
        fail(error)


Reason = Annotated[str, typer.Option("--reason", help="Why (kept with the project).")]
NodeOpt = Annotated[str | None, typer.Option("--node", help="Your node (default: yours).")]


@project_app.command("approve")
def project_approve(project_id: str, reason: Reason, node: NodeOpt = None) -> None:
    """Approve a project for your node (stewards); the contract hash is ledgered."""
    _verdict("approve", project_id, reason, node)


@project_app.command("deny")
def project_deny(project_id: str, reason: Reason, node: NodeOpt = None) -> None:
    """Deny a project for your node (stewards), with a reason."""
    _verdict("deny", project_id, reason, node)


@project_app.command("revoke")
def project_revoke(project_id: str, reason: Reason) -> None:
    """Revoke a project (owner, admin) or withdraw your node from it (stewards)."""
    _verdict("revoke", project_id, reason, None)


@query_app.command("count")
def query_count(
    project: Annotated[str, typer.Option("--project", help="The project id.")],
) -> None:
    """Patients in the project's cohort per approved node (below the minimum cell: <k)."""
    try:
        with _client() as client:
            answer = client.post(f"/projects/{project}/count")
    except MedSpaceError as error:
        fail(error)
    table = Table("node", "status", "patients", "note")
    for row in answer["results"]:
        table.add_row(row["node"], row["status"], row.get("display", ""), row.get("reason", ""))
    console.print(table)
    if answer["partial"]:
        console.print("[yellow]partial answer: some approved nodes were missing[/]")


@audit_app.command("verify")
def audit_verify_cmd(
    hub: Annotated[str | None, typer.Option("--hub", help="Verify a hub over its API.")] = None,
    db: Annotated[str | None, typer.Option("--db", help="Verify a hub database.")] = None,
    log_key: Annotated[
        str | None, typer.Option("--log-key", help="The log key printed by `hub init`.")
    ] = None,
    ca_file: Annotated[Path | None, typer.Option("--ca", help="CA for https.")] = None,
) -> None:
    """Re-hash every entry, check every signature, proof and cosignature; print a verdict."""
    from medspace.hub.audit import verify_database, verify_remote
    from medspace.hub.client import HubClient, load_session

    try:
        if (hub is None) == (db is None):
            raise UsageError("give exactly one of --hub URL and --db PATH")
        if db is not None:
            verdict: Any = verify_database(db)
            findings = [str(f) for f in verdict.findings]
        else:
            assert hub is not None
            session = load_session()
            ca = str(ca_file) if ca_file else session.ca_file
            with HubClient(hub, session.token, ca_file=ca) as client:
                verdict = verify_remote(client, log_key=log_key)
            findings = list(verdict.findings)
    except MedSpaceError as error:
        fail(error)
    for finding in findings:
        console.print(f"  {finding}", highlight=False)
    style = "bold green" if verdict.ok else "bold red"
    console.print(f"[{style}]{verdict.summary()}[/]", highlight=False)
    if not verdict.ok:
        raise typer.Exit(11)


@audit_app.command("show")
def audit_show(
    project: Annotated[str | None, typer.Option("--project", help="Only this project.")] = None,
    start: Annotated[int, typer.Option(min=0)] = 0,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
) -> None:
    """List ledger entries (type, actor, node, project, time, decision)."""
    import base64

    from medspace.ledger import SignedEntry

    try:
        with _client() as client:
            page = client.get("/ledger/entries", start=start, limit=limit, project=project)
    except MedSpaceError as error:
        fail(error)
    table = Table("#", "time", "type", "actor", "node", "project", "details")
    for row in page["entries"]:
        entry = SignedEntry.from_bytes(base64.b64decode(row["body"])).entry
        details = " ".join(f"{k}={v}" for k, v in sorted(entry.details.items()))
        table.add_row(
            str(row["index"]),
            entry.time,
            entry.type.value,
            entry.actor,
            entry.node or "",
            entry.project or "",
            details,
        )
    console.print(table)


@audit_app.command("prove")
def audit_prove(entry_id: Annotated[int, typer.Argument(min=0, help="The entry index.")]) -> None:
    """Prove one entry is in the log (inclusion proof under a final checkpoint), checked
    here against the log key and the witnesses."""
    import base64

    from medspace.ledger import (
        CosignatureVerifier,
        NoteVerifier,
        Quorum,
        SignedCheckpoint,
        SignedEntry,
        leaf_hash,
        verify_inclusion,
    )

    try:
        with _client() as client:
            answer = client.get(f"/ledger/prove/{entry_id}")
            keys = client.get("/ledger/keys")
            page = client.get("/ledger/entries", start=entry_id, limit=1)
        signed = SignedCheckpoint.from_text(answer["checkpoint"])
        signed.verify(NoteVerifier.from_vkey(keys["log_key"]))
        body = base64.b64decode(page["entries"][0]["body"])
        SignedEntry.from_bytes(body)
        proof = [base64.b64decode(p) for p in answer["proof"]]
        cp = signed.checkpoint
        verify_inclusion(entry_id, cp.size, leaf_hash(body), proof, cp.root)
        witnesses = [CosignatureVerifier.from_vkey(v) for v in keys["witnesses"]]
        final = bool(witnesses) and Quorum(witnesses, keys["threshold"]).is_final(signed)
    except MedSpaceError as error:
        fail(error)
    console.print(
        f"entry {entry_id} is in the log: inclusion proof of {len(proof)} hashes verified "
        f"under the checkpoint at size {cp.size}"
        + (" (final: witness quorum reached)" if final else " (not final yet)"),
        highlight=False,
    )


@certs_app.command("init")
def certs_init(
    directory: Annotated[Path, typer.Argument(help="Directory for the CA and certificates.")],
    host: Annotated[list[str] | None, typer.Option("--host", help="Hub host names.")] = None,
    node: Annotated[list[str] | None, typer.Option("--node", help="Node names.")] = None,
) -> None:
    """Create a small CA, the hub's server certificate and a client certificate per node."""
    from medspace.identity import init_certs

    try:
        bundle = init_certs(directory, host or ["localhost", "127.0.0.1"], node or [])
    except MedSpaceError as error:
        fail(error)
    console.print(f"CA {bundle.ca.cert}, hub certificate {bundle.hub.cert}")
    for name, pair in bundle.nodes.items():
        console.print(f"node {name}: {pair.cert}")


def node_serve(
    node: Annotated[Path, typer.Option("--node", help="The node directory.")],
    hub: Annotated[str, typer.Option("--hub", help="The hub URL (http:// or https://).")],
    ca_file: Annotated[Path | None, typer.Option("--ca", help="CA to trust for https.")] = None,
) -> None:
    """Connect this node to the hub (outbound only) and serve tasks until stopped."""
    from medspace.node.service import serve

    def event(message: str) -> None:
        console.print(f"[dim]node {node.name}:[/] {message}", highlight=False)

    try:
        serve(node, hub, ca_file=ca_file, on_event=event)
    except MedSpaceError as error:
        fail(error)
