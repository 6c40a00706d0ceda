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


def _busy_warning(console: Console) -> float | None:
    """The share of all CPUs that other work kept busy over one second before a suite
    (Linux /proc/stat; None elsewhere), with a warning when it is high: every latency
    and rate measured on a busy machine is inflated by work that is not ours. (A load
    average would also count the previous suite's processes, which are gone.)"""

    def ticks() -> tuple[int, int] | None:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields) - idle, sum(fields)

    before = ticks()
    time.sleep(1.0)
    after = ticks()
    if before is None or after is None or after[1] == before[1]:
        return None
    busy = round((after[0] - before[0]) / (after[1] - before[1]), 2)
    if busy > 0.25:
        console.print(
            f"[yellow]other work keeps {busy:.0%} of the CPUs busy: timings will be "
            "inflated; stop it (tests, builds) and run again for numbers to quote[/]"
        )
    return busy


def _reference_ms() -> float:
    """CPU milliseconds of a fixed workload (JSON, SHA-256, Ed25519 signing and checking,
    a Python loop), the best of 5. On the shared virtual machine we develop on, the same
    code takes up to ~1.7x as long from one minute to the next; a suite records this
    before and after it runs, and figures from two runs compare only where these agree."""
    import hashlib
    import json as json_module

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    document = {"entries": [{"id": i, "text": "x" * 40} for i in range(200)]}
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for i in range(40):
            data = json_module.dumps(document, sort_keys=True).encode()
            digest = hashlib.sha256(data).digest()
            public.verify(key.sign(digest), digest)
            sum(j * j for j in range(2_000 + i))
        best = min(best, time.process_time() - started)
    return round(best * 1000, 2)


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
        busy = _busy_warning(console)
        reference = _reference_ms()
        started = time.perf_counter()
        try:
            result = importlib.import_module(f"bench.{name}").run()
        except Exception as error:  # a broken benchmark is reported, the others still run
            console.print(f"[red]bench {name} failed:[/] {error!r}")
            failed.append(name)
            continue
        result.setdefault("machine", _machine())
        result["machine"]["other_cpu_busy_at_start"] = busy
        result["machine"]["reference_workload_cpu_ms"] = [reference, _reference_ms()]
        result["wall_seconds"] = round(time.perf_counter() - started, 1)
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
        _render(console, result)
    if failed:
        console.print(f"[red]failed benchmarks: {', '.join(failed)}[/]")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
