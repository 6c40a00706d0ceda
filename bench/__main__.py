"""Run the benchmarks, write `bench/results/<name>.json`, print one table.

Each benchmark module exposes `run() -> dict` returning
`{"name", "environment", "metrics": [{"metric", "value", "unit", "target", "anchor", "met"}]}`.
Comparisons are ratios measured side by side in the same run; nothing here asserts speed.
Usage: `python -m bench [NAME ...]` (default: all).
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

SUITES = ["ingest", "deid", "ledger", "channel", "secagg", "lookup", "linkage", "analytics"]
RESULTS = Path(__file__).resolve().parent / "results"


def _machine() -> dict[str, Any]:
    import os

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _render(console: Console, result: dict[str, Any]) -> None:
    table = Table(title=f"bench: {result['name']}", title_justify="left")
    for column in ("metric", "value", "unit", "target", "met", "anchor"):
        table.add_column(column, overflow="fold")
    for m in result["metrics"]:
        value = m["value"]
        shown = f"{value:,.3f}" if isinstance(value, float) else f"{value:,}"
        met = {True: "[green]yes[/]", False: "[red]no[/]", None: ""}[m.get("met")]
        table.add_row(
            m["metric"], shown, m.get("unit", ""), m.get("target") or "", met, m.get("anchor") or ""
        )
    console.print(table)


def main(names: list[str]) -> int:
    console = Console()
    RESULTS.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in names or SUITES:
        console.print(f"[bold]running bench/{name}.py[/] ...")
        started = time.perf_counter()
        try:
            result = importlib.import_module(f"bench.{name}").run()
        except Exception as error:  # a broken benchmark is reported, the others still run
            console.print(f"[red]bench {name} failed:[/] {error!r}")
            failed.append(name)
            continue
        result.setdefault("machine", _machine())
        result["wall_seconds"] = round(time.perf_counter() - started, 1)
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
        _render(console, result)
    if failed:
        console.print(f"[red]failed benchmarks: {', '.join(failed)}[/]")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
