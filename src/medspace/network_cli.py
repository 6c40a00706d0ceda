"""The network commands: `login`, `project ...`, `query count`, `audit ...`, `certs init`
and `node serve` (mounted by `medspace.cli`). They talk to the hub over its API with the
session stored by `medspace login` ($MEDSPACE_HOME, default ~/.medspace)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
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
steward_app = typer.Typer(
    help="Pin the signing keys of this node's stewards (approvals must carry them).",
    no_args_is_help=True,
)


def hub_client() -> Any:
    """A `HubClient` for the hub and token `medspace login` stored."""
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
    """Log in to the hub and store the token (expires; log in again when it does).

    On first login this creates your Ed25519 signing key on this machine
    ($MEDSPACE_HOME/keys/<hub>/<user>.pem, mode 0600; the public key beside it as .pub)
    and registers it with the hub: your requests, approvals and revocations are then
    ledger entries only you can sign."""
    from medspace.hub.client import HubClient, Session, home, save_session
    from medspace.identity.userkeys import user_key_path

    try:
        password = read_password(password_stdin)
        ca = str(ca_file.absolute()) if ca_file else None
        with HubClient(hub, ca_file=ca) as client:
            token = client.login(user, password)
            outcome = client.ensure_user_key(user)
        path = save_session(Session(hub, token, ca, user))
    except MedSpaceError as error:
        fail(error)
    console.print(f"logged in as [bold]{user}[/] (session in {path})")
    key = user_key_path(home(), hub, user)
    if outcome == "created":
        console.print(f"created your signing key {key} and registered it with the hub")
        console.print(f"stewards: give {key.with_suffix('.pub')} to your node's operator")
    elif outcome == "registered":
        console.print(f"registered your signing key {key} with the hub")


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
        with hub_client() as client:
            _print_state(client.post("/projects", terms))
    except MedSpaceError as error:
        fail(error)


@project_app.command("show")
def project_show(project_id: Annotated[str, typer.Argument(help="The project id.")]) -> None:
    """Show a project and every node's verdict."""
    try:
        with hub_client() as client:
            _print_state(client.get(f"/projects/{project_id}"))
    except MedSpaceError as error:
        fail(error)


@project_app.command("list")
def project_list() -> None:
    """List the projects you may see."""
    try:
        with hub_client() as client:
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
        with hub_client() as client:
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
        with hub_client() as client:
            answer = client.post(f"/projects/{project}/count")
    except MedSpaceError as error:
        fail(error)
    table = Table("node", "status", "patients", "note")
    for row in answer["results"]:
        table.add_row(row["node"], row["status"], row.get("display", ""), row.get("reason", ""))
    console.print(table)
    if answer["partial"]:
        console.print("[yellow]partial answer: some approved nodes were missing[/]")


# -- federated analytics: `medspace query run` --------------------------------------------


@query_app.command("run")
def query_run(
    spec_file: Annotated[Path, typer.Argument(help="The query spec (JSON).")],
    project: Annotated[str, typer.Option("--project", help="The project id.")],
    report: Annotated[
        Path | None, typer.Option("--report", help="Write the HTML + JSON report here.")
    ] = None,
    hub: Annotated[
        str | None, typer.Option("--hub", help="The hub URL (default: your login's).")
    ] = None,
    epsilon: Annotated[
        str | None, typer.Option("--epsilon", help="DP budget this query spends.")
    ] = None,
) -> None:
    """Run a federated query: every approving hospital computes locally, the hub sees only
    the securely aggregated sum. Prints the result and writes the report."""
    from medspace.hub.client import HubClient, load_session

    try:
        spec = read_json_file(spec_file)
        if hub is None:
            client = hub_client()
        else:
            session = load_session()
            client = HubClient(hub, session.token, ca_file=session.ca_file)
        with client:
            answer = client.run_query(project, spec, epsilon=epsilon)
    except MedSpaceError as error:
        fail(error)
    print_answer(answer, report)


def read_json_file(path: Path) -> Any:
    """A JSON file's content; raises `UsageError` saying which file could not be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path} as JSON ({type(exc).__name__})") from None


def print_answer(answer: dict[str, Any], report: Path | None) -> None:
    """Print a query's (or session statistic's) answer as tables, write its report when
    asked, name its ledger entries; exit 8 when it was refused."""
    from medspace.hub.analytics_answer import answer_tables, write_answer_report

    for table in answer_tables(answer):
        console.print(table)
    if report is not None and answer["status"] != "refused":
        try:
            html_path, json_path = write_answer_report(answer, report)
        except MedSpaceError as error:
            fail(error)
        console.print(f"report: {html_path} (JSON twin: {json_path})", highlight=False)
    ids = ", ".join(str(i) for i in answer.get("ledger_entries", []))
    console.print(f"ledger entries: {ids or 'none'}", highlight=False)
    if answer["status"] == "refused":
        console.print(f"[bold red]refused:[/] {answer.get('reason', '')}", highlight=False)
        raise typer.Exit(8)
    if answer["status"] == "partial":
        missing = ", ".join(answer.get("missing", []))
        console.print(f"[yellow]partial result: missing {missing}[/]", highlight=False)


@audit_app.command("verify")
def audit_verify_cmd(
    hub: Annotated[str | None, typer.Option("--hub", help="Verify a hub over its API.")] = None,
    db: Annotated[str | None, typer.Option("--db", help="Verify a hub database.")] = None,
    log_key: Annotated[
        str | None, typer.Option("--log-key", help="The log key printed by `hub init`.")
    ] = None,
    ca_file: Annotated[Path | None, typer.Option("--ca", help="CA for https.")] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Processes for --db (default: CPU count)."),
    ] = None,
) -> None:
    """Re-hash every entry, check every signature, proof and cosignature; print a verdict."""
    from medspace.hub.audit import verify_database, verify_remote
    from medspace.hub.client import HubClient, load_session

    try:
        if (hub is None) == (db is None):
            raise UsageError("give exactly one of --hub URL and --db PATH")
        if db is not None:
            verdict: Any = verify_database(db, workers=workers or os.cpu_count() or 1)
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
        with hub_client() as client:
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
        with hub_client() as client:
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


NodeDirOpt = Annotated[Path, typer.Option("--node", help="The node directory.")]


@steward_app.command("add")
def steward_add(
    node: NodeDirOpt,
    user: Annotated[str, typer.Option("--user", help="The steward's user name at the hub.")],
    key: Annotated[Path, typer.Option("--key", help="The steward's public key file (<user>.pub).")],
) -> None:
    """Pin a steward's public signing key at this node (replaces an older pin of theirs).
    Compare its fingerprint with the steward out of band."""
    from medspace.identity import fingerprint, parse_public_key
    from medspace.identity.stewards import pin_steward
    from medspace.node import open_node

    try:
        with open_node(node):
            pass  # a real node directory
        try:
            text = key.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {key} ({type(exc).__name__})") from None
        pinned = pin_steward(node, user, text)
    except MedSpaceError as error:
        fail(error)
    console.print(
        f"steward [bold]{user}[/] pinned (key fingerprint "
        f"{fingerprint(parse_public_key(pinned))[:16]}…)"
    )


@steward_app.command("remove")
def steward_remove(
    node: NodeDirOpt,
    user: Annotated[str, typer.Option("--user", help="The steward's user name.")],
) -> None:
    """Unpin a steward: approvals they sign are no longer accepted by this node."""
    from medspace.identity.stewards import unpin_steward

    try:
        removed = unpin_steward(node, user)
    except MedSpaceError as error:
        fail(error)
    console.print(f"steward {user} " + ("unpinned" if removed else "was not pinned"))


@steward_app.command("list")
def steward_list(node: NodeDirOpt) -> None:
    """The stewards pinned at this node and their key fingerprints."""
    from medspace.identity import fingerprint, parse_public_key
    from medspace.identity.stewards import steward_pins

    try:
        pins = steward_pins(node)
    except MedSpaceError as error:
        fail(error)
    table = Table("steward", "key fingerprint")
    for name, key in sorted(pins.items()):
        table.add_row(name, fingerprint(parse_public_key(key)))
    console.print(table)


def node_serve(
    node: Annotated[Path, typer.Option("--node", help="The node directory.")],
    hub: Annotated[str, typer.Option("--hub", help="The hub URL (http:// or https://).")],
    ca_file: Annotated[Path | None, typer.Option("--ca", help="CA to trust for https.")] = None,
) -> None:
    """Connect this node to the hub (outbound only) and serve tasks until stopped."""
    from medspace.node.service import serve

    def event(message: str) -> None:
        # One plain, timestamped line per event: this runs on the node's event loop for
        # every lookup and task, where rendering markup would cost the answer time.
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        print(f"{stamp} node {node.name}: {message}", flush=True)

    try:
        serve(node, hub, ca_file=ca_file, on_event=event)
    except MedSpaceError as error:
        fail(error)
