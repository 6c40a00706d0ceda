"""The `medspace` command: one Typer app, one sub-app per component.

Every command turns a `MedSpaceError` into a one-line message on stderr and the error's
exit code; nothing a command prints contains patient data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from medspace import network_cli
from medspace.deid.cli import app as deid_app
from medspace.errors import MedSpaceError
from medspace.hub.cli import hub_app
from medspace.linkage.cli import app as linkage_app
from medspace.lookup.cli import app as lookup_app
from medspace.node.extract_cli import node_export
from medspace.node.steward_cli import node_opt_out, node_policy
from medspace.session_cli import session_app

app = typer.Typer(
    name="medspace",
    help="MedSpace: a trusted data space for hospitals. Raw records never leave their node.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
node_app = typer.Typer(help="Set up a hospital node and load its data.", no_args_is_help=True)
app.add_typer(node_app, name="node")

console = Console()
err_console = Console(stderr=True)

NodeDir = Annotated[Path, typer.Option("--node", help="The node directory (from `node init`).")]


def _fail(error: MedSpaceError) -> None:
    err_console.print(f"[bold red]error:[/] {error}", highlight=False)
    raise typer.Exit(error.exit_code)


@app.command()
def synth(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the hospitals into.")],
    hospitals: Annotated[int, typer.Option(min=1, help="Number of hospitals.")] = 3,
    patients: Annotated[int, typer.Option(min=1, help="Patients per hospital.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed; the same seed writes the same files.")] = 0,
    locale: Annotated[str, typer.Option(help="zh_CN, en_US or mixed.")] = "mixed",
    shared_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of patients known at 2+ hospitals.")
    ] = 0.15,
) -> None:
    """Write synthetic hospitals in FHIR R4, HL7 v2 and CSV, with their ground truth."""
    from medspace.cli_support import progress_bar
    from medspace.synth import generate

    try:
        with progress_bar(console, "synthesising", total=hospitals * patients) as advance:
            summary = generate(
                out,
                hospitals=hospitals,
                patients=patients,
                seed=seed,
                locale=locale,
                shared_share=shared_share,
                progress=advance,
            )
    except MedSpaceError as error:
        _fail(error)
    console.print(f"wrote {summary} to [bold]{out}[/]")


@node_app.command("init")
def node_init(
    directory: Annotated[Path, typer.Argument(help="Directory for the new node.")],
    name: Annotated[str, typer.Option("--name", help="The hospital's node name, e.g. h1.")],
    db: Annotated[
        str | None, typer.Option("--db", help="Database URL (default: SQLite in the directory).")
    ] = None,
) -> None:
    """Create a node: config, key-encryption key, pseudonym key and identity key."""
    from medspace.cli_support import print_node_locations
    from medspace.node import init_node

    try:
        config = init_node(directory, name, db)
    except MedSpaceError as error:
        _fail(error)
    print_node_locations(console, directory, config)


@node_app.command("ingest")
def node_ingest(
    node: NodeDir,
    paths: Annotated[list[Path], typer.Argument(help="Files or directories to ingest.")],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="fhir-ndjson, fhir-bundle, hl7v2 or csv-mapping."),
    ] = None,
) -> None:
    """Read exports (FHIR R4, HL7 v2, CSV), encrypt identifiers and store; bad records go
    to quarantine."""
    from medspace.cli_support import ingest_paths, print_ingest_report
    from medspace.node import open_node

    try:
        opened = open_node(node)
        report = ingest_paths(console, opened.store, paths, fmt)
    except MedSpaceError as error:
        _fail(error)
    print_ingest_report(console, report)


@node_app.command("stats")
def node_stats(node: NodeDir) -> None:
    """Counts per table, and received = stored + skipped + quarantined over all ingests."""
    from medspace.cli_support import print_stats
    from medspace.node import open_node

    try:
        opened = open_node(node)
        stats = opened.store.stats()
    except MedSpaceError as error:
        _fail(error)
    print_stats(console, stats, opened.config.name)


@node_app.command("quarantine")
def node_quarantine(
    node: NodeDir,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many entries.")] = 50,
) -> None:
    """List quarantined records: source, position and reason (never their content)."""
    from medspace.cli_support import print_quarantine
    from medspace.node import open_node

    try:
        entries = open_node(node).store.quarantine(limit=limit)
    except MedSpaceError as error:
        _fail(error)
    print_quarantine(console, entries)


@node_app.command("rotate-key")
def node_rotate_key(node: NodeDir) -> None:
    """Create a new key-encryption key and re-wrap every data key under it."""
    from medspace.node import open_node

    try:
        report = open_node(node).store.rotate_key()
    except MedSpaceError as error:
        _fail(error)
    console.print(
        f"key-encryption key {report.old_kek_id} replaced by {report.new_kek_id}; "
        f"{report.rewrapped:,} data keys re-wrapped, no data re-encrypted"
    )


# Each component owns its commands; they are mounted here.
app.add_typer(deid_app, name="deid", help="De-identify notes, tables and FHIR resources.")
app.add_typer(hub_app, name="hub")
app.add_typer(network_cli.project_app, name="project")
network_cli.query_app.add_typer(session_app, name="session")
app.add_typer(network_cli.query_app, name="query")
app.add_typer(network_cli.audit_app, name="audit")
app.add_typer(network_cli.certs_app, name="certs")
app.command("login")(network_cli.login)
node_app.command("serve")(network_cli.node_serve)
node_app.command("export")(node_export)
node_app.command("policy")(node_policy)
node_app.command("opt-out")(node_opt_out)
node_app.add_typer(network_cli.steward_app, name="steward")
node_app.add_typer(linkage_app, name="linkage")
app.add_typer(lookup_app, name="lookup")


def main() -> None:
    """Entry point of the `medspace` console script."""
    app()


if __name__ == "__main__":
    main()
