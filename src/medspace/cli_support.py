"""Rich output shared by the CLI and the demo: progress bars and result tables.

Nothing printed here contains patient data: only counts, kinds, file names and reasons.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from medspace.connectors import read_any

if TYPE_CHECKING:
    from medspace.node import NodeConfig
    from medspace.store import IngestReport, NodeStore, QuarantineEntry, StoreStats

#: Node tables shown to a user, in the order a clinician reads them.
SHOWN_TABLES = (
    ("person", "patients"),
    ("visit_occurrence", "encounters"),
    ("condition_occurrence", "conditions"),
    ("drug_exposure", "drugs"),
    ("measurement", "labs"),
    ("observation", "observations"),
    ("procedure_occurrence", "procedures"),
    ("allergy", "allergies"),
    ("note", "notes"),
)


@contextmanager
def progress_bar(
    console: Console, label: str, total: int | None
) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar; yields `advance(n)`."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(label, total=total)

        def advance(n: int = 1) -> None:
            progress.advance(task, n)

        yield advance


def ingest_paths(
    console: Console, store: NodeStore, paths: list[Path], fmt: str | None
) -> list[IngestReport]:
    """Ingest each path (file or directory) with a progress bar counting source units."""
    reports = []
    for path in paths:
        with progress_bar(console, f"ingest {path.name}", total=None) as advance:
            reports.append(store.ingest(read_any(path, fmt), source=str(path), progress=advance))
    return reports


def print_ingest_report(console: Console, reports: list[IngestReport]) -> None:
    table = Table(title="ingest", title_justify="left")
    for column in ("source", "received", "stored", "skipped", "quarantined"):
        table.add_column(column, justify="right" if column != "source" else "left")
    for r in reports:
        table.add_row(
            r.source, *(f"{v:,}" for v in (r.received, r.stored, r.skipped, r.quarantined))
        )
    console.print(table)
    for r in reports:
        if r.skipped_by_type:
            kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(r.skipped_by_type.items()))
            console.print(f"  skipped (not mapped yet) in {r.source}: {kinds}")


def node_table(name: str, stats: StoreStats) -> Table:
    """One node's counts: rows per table, then the ingest balance."""
    table = Table(title=f"node {name}", title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, label in SHOWN_TABLES:
        table.add_row(label, f"{stats.rows.get(key, 0):,}")
    table.add_row("quarantined", f"{stats.quarantined:,}", style="yellow")
    table.add_section()
    table.add_row("units received", f"{stats.received:,}")
    table.add_row("  stored", f"{stats.stored:,}")
    table.add_row("  skipped (type not mapped)", f"{stats.skipped:,}")
    table.add_row("  quarantined", f"{stats.quarantined:,}")
    return table


def print_stats(console: Console, stats: StoreStats, name: str = "") -> None:
    console.print(node_table(name, stats))


def print_quarantine(console: Console, entries: list[QuarantineEntry]) -> None:
    if not entries:
        console.print("quarantine is empty")
        return
    table = Table(title="quarantine (reasons only; content stays encrypted)", title_justify="left")
    for column in ("id", "source", "position", "reason"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(str(e.id), e.source, e.position, e.reason)
    console.print(table)


def print_node_locations(console: Console, directory: Path, config: NodeConfig) -> None:
    console.print(f"node [bold]{config.name}[/] created in {directory}")
    console.print(f"  database: {config.db_url}")
    console.print(f"  keys (0600, never in the database): {directory}")
