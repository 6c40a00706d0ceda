"""`medspace node linkage ...`: the network linkage key and the node's linkage index.

- `keygen OUT`: make the network's linkage key (once, on a trusted machine; mode 0600).
  Stewards carry it to every node out of band; the hub never gets it.
- `set-key --node DIR KEYFILE`: install the key in a node (as `linkage.key`, 0600) and
  index the patients already stored; later ingests index as they go.
- `index --node DIR`: recompute every stored patient's tokens (after a key change, or for
  a store ingested before the key was installed).
- `evaluate SYNTH_DIR`: precision and recall of exact, fuzzy and combined linkage on
  `medspace synth` output against its linkage_truth.json.

Nothing printed contains patient data: counts, key ids and quality figures only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from medspace.errors import MedSpaceError
from medspace.linkage.errors import LinkageKeyError
from medspace.linkage.evaluate import Evaluation, evaluate
from medspace.linkage.index import DEFAULT_THRESHOLD, rebuild_index
from medspace.linkage.key import KEY_FILE, LinkageKey, read_key_file, write_key_file

app = typer.Typer(
    help="Linkage tokens for the emergency lookup: the network key and the node's index.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)

NodeDir = Annotated[Path, typer.Option("--node", help="The node directory (from `node init`).")]


def _fail(error: MedSpaceError) -> None:
    err_console.print(f"[bold red]error:[/] {error}", highlight=False)
    raise typer.Exit(error.exit_code)


@app.command("keygen")
def keygen(
    out: Annotated[Path, typer.Argument(help="File to write the new key to (must not exist).")],
) -> None:
    """Make the network linkage key (32 random bytes, file mode 0600)."""
    try:
        key = LinkageKey.generate()
        write_key_file(out, key)
    except MedSpaceError as error:
        _fail(error)
    console.print(
        f"linkage key {key.key_id} written to {out} (mode 0600). Give it to every node's "
        "steward out of band (`medspace node linkage set-key`); never to the hub."
    )


def _index(node_dir: Path) -> tuple[str, int]:
    from medspace.node import open_node

    with open_node(node_dir) as node:
        if node.linkage_key is None:
            raise LinkageKeyError(
                f"node {node.name} has no linkage key: install the network's key with "
                "`medspace node linkage set-key --node DIR KEYFILE`"
            )
        return node.linkage_key.key_id, rebuild_index(node.store, node.linkage_key)


@app.command("set-key")
def set_key(
    node: NodeDir,
    keyfile: Annotated[Path, typer.Argument(help="The network linkage key (from keygen).")],
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Replace a different key the node already has."),
    ] = False,
) -> None:
    """Install the network linkage key in a node and index its stored patients."""
    from medspace.node import open_node

    try:
        key = read_key_file(keyfile)
        with open_node(node) as opened:
            current = opened.linkage_key
            target = opened.directory / KEY_FILE
        if current is not None and current.key_id != key.key_id and not replace:
            raise LinkageKeyError(
                f"this node already has linkage key {current.key_id}, not {key.key_id}: "
                "every node of a network must use the same key; pass --replace to change it"
            )
        if current is None or current.key_id != key.key_id:
            write_key_file(target, key, replace=True)
        key_id, count = _index(node)
    except MedSpaceError as error:
        _fail(error)
    console.print(f"linkage key {key_id} installed; {count:,} patients indexed")


@app.command("index")
def index(node: NodeDir) -> None:
    """Recompute the linkage tokens of every patient in the node's store."""
    try:
        key_id, count = _index(node)
    except MedSpaceError as error:
        _fail(error)
    console.print(f"{count:,} patients indexed under linkage key {key_id}")


def _table(result: Evaluation) -> Table:
    table = Table(
        title=(
            f"linkage on {result.hospitals} hospitals, {result.patients:,} patients, "
            f"{result.truth_pairs:,} true cross-hospital pairs (threshold {result.threshold})"
        ),
        title_justify="left",
    )
    for column in ("tokens", "pairs found", "true", "precision", "recall"):
        table.add_column(column, justify="left" if column == "tokens" else "right")
    rows = [
        ("exact (national ID)", result.exact),
        ("fuzzy (CLK only)", result.fuzzy),
        ("combined (a lookup)", result.combined),
    ]
    for label, quality in rows:
        table.add_row(
            label,
            f"{quality.predicted:,}",
            f"{quality.true_positives:,}",
            f"{quality.precision:.4f}",
            f"{quality.recall:.4f}",
        )
    return table


@app.command("evaluate")
def evaluate_command(
    synth_dir: Annotated[Path, typer.Argument(help="Output folder of `medspace synth`.")],
    threshold: Annotated[
        float, typer.Option(min=0.01, max=1.0, help="Dice threshold of a fuzzy match.")
    ] = DEFAULT_THRESHOLD,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Precision and recall of the linkage tokens against linkage_truth.json."""
    try:
        result = evaluate(synth_dir, threshold=threshold)
    except MedSpaceError as error:
        _fail(error)
    if as_json:
        console.print_json(json.dumps(result.to_json()))
        return
    console.print(_table(result))
    curve = ", ".join(
        f"{t:.2f}: P {q.precision:.4f} R {q.recall:.4f}" for t, q in result.fuzzy_curve.items()
    )
    console.print(f"fuzzy by threshold: {curve}", highlight=False)
