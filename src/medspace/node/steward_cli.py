"""Steward commands for a node's own rules: `node policy` and `node opt-out`.

The standing policy (`policy.json`) is what this node allows whatever a project says;
opt-outs (`consent.json`) are kept by keyed pseudonym, never by identifier.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from medspace.errors import MedSpaceError, UsageError
from medspace.node.directory import open_node
from medspace.node.standing import load_consent, load_node_policy, save_consent, save_node_policy
from medspace.policy import NodePolicy, ProjectError, Purpose

console = Console()
err_console = Console(stderr=True)

NodeDir = Annotated[Path, typer.Option("--node", help="The node directory.")]


def _fail(error: MedSpaceError) -> None:
    err_console.print(f"[bold red]error:[/] {error}", highlight=False)
    raise typer.Exit(error.exit_code)


def _purposes(codes: list[str]) -> list[Purpose]:
    try:
        return [Purpose(code.upper()) for code in codes]
    except ValueError:
        known = ", ".join(p.value for p in Purpose)
        raise UsageError(f"unknown purpose of use; use one of {known}") from None


def _show(policy: NodePolicy) -> None:
    table = Table(title=f"standing policy of node {policy.node}", title_justify="left")
    table.add_column("rule")
    table.add_column("value")
    purposes = ", ".join(sorted(p.value for p in policy.allowed_purposes)) or "none (deny all)"
    computations = ", ".join(sorted(policy.allowed_computations)) or "none (deny all)"
    table.add_row("allowed purposes", purposes)
    table.add_row("allowed computations", computations)
    table.add_row("minimum cell size floor", str(policy.min_cell_floor))
    table.add_row("break-glass allowed", "yes" if policy.break_glass_allowed else "no")
    console.print(table)


def node_policy(
    node: NodeDir,
    allow_purpose: Annotated[
        list[str] | None,
        typer.Option("--allow-purpose", help="HL7 v3 ActReason code, e.g. HRESCH (repeat)."),
    ] = None,
    allow_computation: Annotated[
        list[str] | None,
        typer.Option("--allow-computation", help="Computation kind, e.g. count (repeat)."),
    ] = None,
    min_cell: Annotated[
        int | None, typer.Option("--min-cell", min=1, help="Smallest cell this node releases.")
    ] = None,
    break_glass: Annotated[
        bool | None,
        typer.Option("--break-glass/--no-break-glass", help="Allow purpose BTG here."),
    ] = None,
) -> None:
    """Show the node's standing policy, or change the rules given (others are kept)."""
    try:
        name = open_node(node).config.name
        policy = load_node_policy(node, name)
        changes: dict[str, object] = {}
        if allow_purpose is not None:
            changes["allowed_purposes"] = frozenset(_purposes(allow_purpose))
        if allow_computation is not None:
            changes["allowed_computations"] = frozenset(allow_computation)
        if min_cell is not None:
            changes["min_cell_floor"] = min_cell
        if break_glass is not None:
            changes["break_glass_allowed"] = break_glass
        if changes:
            data = policy.model_dump() | changes
            try:
                policy = NodePolicy.parse(data)
            except ProjectError as error:
                raise UsageError(f"policy not changed: {error}") from None
            save_node_policy(node, policy)
    except MedSpaceError as error:
        _fail(error)
    _show(policy)


def node_opt_out(
    node: NodeDir,
    patient: Annotated[str, typer.Option("--patient", help="The patient's id in this node.")],
    purpose: Annotated[
        list[str], typer.Option("--purpose", help="Purpose opted out of, e.g. HRESCH (repeat).")
    ],
) -> None:
    """Record a patient's opt-out of purposes of use (kept by pseudonym, not by id)."""
    try:
        store = open_node(node).store
        store.patient_identity(patient)  # refuses a patient this node does not hold
        pseudonym = store.pseudonym(patient)
        purposes = _purposes(purpose)
        save_consent(node, load_consent(node).with_opt_out(pseudonym, purposes).to_document())
    except MedSpaceError as error:
        _fail(error)
    codes = ", ".join(sorted(p.value for p in purposes))
    console.print(f"opt-out recorded for patient {pseudonym[:12]}…: {codes}")
