"""`medspace node export`: write a de-identified extract of a node (mounted by the CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from medspace.errors import MedSpaceError
from medspace.node.extract import export_deidentified


def node_export(
    node: Annotated[Path, typer.Option("--node", help="The node directory.")],
    out: Annotated[Path, typer.Option("--out", help="A new folder for the extract.")],
) -> None:
    """Write a de-identified extract (one JSON-lines file per record kind) under the node's
    sharing pack (sharing.json; default hipaa-safe-harbor with notes scrubbed)."""
    try:
        report = export_deidentified(node, out)
    except MedSpaceError as error:
        Console(stderr=True).print(f"[bold red]error:[/] {error}", highlight=False)
        raise typer.Exit(error.exit_code) from None
    console = Console()
    for kind, count in report.counts.items():
        console.print(f"{kind:<12} {count:>8}")
    if report.notes_left_out:
        console.print(f"{report.notes_left_out} notes left out (scrub_notes is false)")
    console.print(f"wrote {report.total} records under {report.pack} to [bold]{report.out}[/]")
