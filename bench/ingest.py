"""Ingest throughput: parse, map, encrypt and store, end to end, on one node.

Measured in one run, side by side:
- FHIR R4 Bulk NDJSON resources/s for a 100k-patient hospital on SQLite and on PostgreSQL;
- the time `fhir.resources` (R4B models, `model_validate`) takes only to *validate* the
  same resources (a sample of them; the rate is per resource), reported as a ratio;
- peak memory (max RSS of a fresh process) ingesting a 10k- and a 100k-patient hospital:
  streaming means the two stay close;
- HL7 v2 messages/s and CSV rows/s on the 10k-patient hospital.

Sizes can be lowered for a quick look: MEDSPACE_BENCH_PATIENTS (default 100000).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._metrics import metric

BIG = int(os.environ.get("MEDSPACE_BENCH_PATIENTS", "100000"))
SMALL = max(1, BIG // 10)
VALIDATION_SAMPLE = 20_000
PG_ADMIN_URL = os.environ.get(
    "MEDSPACE_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PG_DB = "medspace_bench"

_CHILD = """
import json, resource, sys, time
from pathlib import Path
from medspace.connectors import read_any
from medspace.node import init_node, open_node
node_dir, source, db_url = sys.argv[1], sys.argv[2], sys.argv[3] or None
init_node(Path(node_dir), "bench", db_url)
store = open_node(Path(node_dir)).store
started = time.perf_counter()
report = store.ingest(read_any(Path(source)), source=source)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "received": report.received, "stored": report.stored,
  "skipped": report.skipped, "quarantined": report.quarantined,
  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _ingest_in_fresh_process(
    work: Path, label: str, source: Path, db_url: str = ""
) -> dict[str, Any]:
    node_dir = work / f"node-{label}"
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(node_dir), str(source), db_url],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _count_lines(directory: Path) -> int:
    total = 0
    for path in directory.glob("*.ndjson"):
        with path.open("rb") as f:
            total += sum(1 for _ in f)
    return total


def _validation_rate(ndjson_dir: Path) -> tuple[float, int]:
    """fhir.resources R4B `model_validate` on a sample, resources per second."""
    from fhir.resources.R4B import get_fhir_model_class

    docs: list[dict[str, Any]] = []
    files = sorted(ndjson_dir.glob("*.ndjson"))
    per_file = VALIDATION_SAMPLE // max(1, len(files))
    for path in files:
        with path.open("rb") as f:
            for i, line in enumerate(f):
                if i >= per_file:
                    break
                docs.append(json.loads(line))
    classes = {doc["resourceType"]: get_fhir_model_class(doc["resourceType"]) for doc in docs}
    started = time.perf_counter()
    for doc in docs:
        classes[doc["resourceType"]].model_validate(doc)
    return len(docs) / (time.perf_counter() - started), len(docs)


def _fresh_pg_database() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=2) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_DB}")
            conn.execute(f"CREATE DATABASE {PG_DB}")
    except Exception:
        return None
    return (
        PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        + f"/{PG_DB}"
    )


def run() -> dict[str, Any]:
    from medspace.synth import generate

    metrics: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="medspace-bench-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        generate(work / "big", hospitals=1, patients=BIG, seed=11, locale="en_US")
        synth_seconds = time.perf_counter() - started
        generate(work / "small", hospitals=1, patients=SMALL, seed=12, locale="en_US")
        big_ndjson = work / "big" / "h1" / "fhir" / "ndjson"
        small = work / "small" / "h1"
        resources = _count_lines(big_ndjson)
        metrics.append(
            metric("synth patients/s (3 formats written)", BIG / synth_seconds, "patients/s")
        )

        sqlite = _ingest_in_fresh_process(work, "sqlite", big_ndjson)
        assert sqlite["received"] == sqlite["stored"] + sqlite["skipped"] + sqlite["quarantined"]
        sqlite_rate = sqlite["received"] / sqlite["seconds"]
        metrics.append(
            metric(
                "FHIR ingest, SQLite",
                sqlite_rate,
                "resources/s",
                target=">= 10,000",
                met=sqlite_rate >= 10_000,
            )
        )

        validation_rate, sample = _validation_rate(big_ndjson)
        metrics.append(
            metric(
                f"fhir.resources R4B validate only ({sample:,} sample)",
                validation_rate,
                "resources/s",
            )
        )
        ratio = sqlite_rate / validation_rate
        metrics.append(
            metric(
                "ratio: our end-to-end ingest / validation only",
                ratio,
                "x",
                target=">= 10x",
                met=ratio >= 10,
            )
        )

        pg_url = _fresh_pg_database()
        if pg_url:
            pg = _ingest_in_fresh_process(work, "pg", big_ndjson, pg_url)
            metrics.append(
                metric("FHIR ingest, PostgreSQL", pg["received"] / pg["seconds"], "resources/s")
            )
        else:
            metrics.append(
                metric("FHIR ingest, PostgreSQL (not reachable: not measured)", 0.0, "resources/s")
            )

        small_run = _ingest_in_fresh_process(work, "small", small / "fhir" / "ndjson")
        mem_ratio = sqlite["max_rss_mb"] / small_run["max_rss_mb"]
        metrics.append(metric(f"peak RSS, {SMALL:,} patients", small_run["max_rss_mb"], "MiB"))
        metrics.append(metric(f"peak RSS, {BIG:,} patients", sqlite["max_rss_mb"], "MiB"))
        metrics.append(
            metric(
                "peak RSS ratio (10x the data)",
                mem_ratio,
                "x",
                target="flat (< 1.5x)",
                met=mem_ratio < 1.5,
            )
        )

        hl7 = _ingest_in_fresh_process(work, "hl7", small / "hl7v2")
        metrics.append(metric("HL7 v2 ingest", hl7["received"] / hl7["seconds"], "messages/s"))
        csv = _ingest_in_fresh_process(work, "csv", small / "csv")
        metrics.append(metric("CSV ingest", csv["received"] / csv["seconds"], "rows/s"))

    return {
        "name": "ingest",
        "environment": {"patients": BIG, "fhir_resources": resources, "small_patients": SMALL},
        "metrics": metrics,
    }
