"""`make demo`: what MedSpace does today, end to end, on synthetic hospitals.

1. Synthesise 5 hospitals (zh_CN and en_US), patients shared between them.
2. Create one node per hospital and ingest each from a different export format:
   h1 from FHIR R4 Bulk NDJSON, h2 from HL7 v2, h3 from a HIS CSV export with a mapping,
   h4 and h5 from FHIR R4 transaction Bundles.
3. Print each node's counts and where its data and keys live.
4. The network on loopback: a hub and the 5 nodes as separate processes; a researcher
   files a project, four stewards approve, one denies; the count runs on the approving
   nodes only. Then the multi-centre study (`medspace.analytics.demo`): sorafenib
   response by age band and sex, and the federated MI logistic regression next to a
   pooled fit. Then the emergency lookup (`medspace.lookup.demo`): a patient known at
   three hospitals (at one with a name typo and no ID) is found at all three, an
   opted-out patient is not returned until the glass is broken, and the steward's
   review list shows the break-glass event. Finally the ledger is verified.
5. De-identification: a Chinese and an English note before and after scrubbing, and a
   table's re-identification risk before and after k-anonymisation.

Everything is written under ./demo-data (removed and rewritten on each run).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from medspace.cli_support import ingest_paths, node_table, print_ingest_report, progress_bar
from medspace.errors import MedSpaceError

DEMO_DIR = Path("demo-data")
PATIENTS_PER_HOSPITAL = 1000
HOSPITALS = 5

#: (node, export format shown, path inside the hospital's synthetic folder)
INGEST_PLAN = (
    ("h1", "FHIR R4 Bulk NDJSON", "fhir/ndjson"),
    ("h2", "HL7 v2 (ADT^A01, ORU^R01)", "hl7v2"),
    ("h3", "HIS CSV export + mapping.yaml", "csv"),
    ("h4", "FHIR R4 transaction Bundles", "fhir/bundles"),
    ("h5", "FHIR R4 transaction Bundles", "fhir/bundles"),
)


def _step(console: Console, title: str) -> None:
    console.print()
    console.print(Rule(f"[bold cyan]{title}", align="left"))


def run(console: Console) -> None:
    from medspace.node import init_node, open_node
    from medspace.synth import generate

    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    hospitals_dir = DEMO_DIR / "hospitals"

    _step(console, f"1. Synthesise {HOSPITALS} hospitals (mixed zh_CN / en_US)")
    console.print(
        f"$ medspace synth --hospitals {HOSPITALS} --patients {PATIENTS_PER_HOSPITAL} "
        f"--out {hospitals_dir} --locale mixed --seed 7"
    )
    total = HOSPITALS * PATIENTS_PER_HOSPITAL
    with progress_bar(console, "synthesising", total=total) as advance:
        summary = generate(
            hospitals_dir,
            hospitals=HOSPITALS,
            patients=PATIENTS_PER_HOSPITAL,
            seed=7,
            locale="mixed",
            progress=advance,
        )
    console.print(f"wrote {summary}")

    _step(console, "2. One node per hospital, each ingesting a different export format")
    for name, label, sub in INGEST_PLAN:
        node_dir = DEMO_DIR / "nodes" / name
        source = hospitals_dir / name / sub
        console.print(f"$ medspace node init {node_dir} --name {name}")
        init_node(node_dir, name)
        console.print(f"$ medspace node ingest --node {node_dir} {source}    [dim]# {label}[/]")
        reports = ingest_paths(console, open_node(node_dir).store, [source], None)
        print_ingest_report(console, reports)

    _step(console, "3. What each node holds (received = stored + skipped + quarantined)")
    for name, _label, _sub in INGEST_PLAN:
        node_dir = DEMO_DIR / "nodes" / name
        node = open_node(node_dir)
        console.print(node_table(name, node.store.stats()))
        console.print(f"  data: {node.config.db_url}")
        console.print(
            f"  keys: {node_dir}/ (key-encryption key, pseudonym key, Ed25519 identity; "
            "files 0600, never in the database)"
        )
    console.print(
        "Names, national IDs, MRNs, phones, addresses and note texts are stored only "
        "AES-256-GCM-encrypted; each patient is known to analyses by a keyed pseudonym."
    )

    _step(console, "4. The network: hub and nodes as separate processes, a count, a study")
    from medspace.analytics import demo as study_demo
    from medspace.lookup import demo as lookup_demo
    from medspace.network_demo import RunningNetwork
    from medspace.network_demo import demo as network_demo

    node_dirs = {name: (DEMO_DIR / "nodes" / name).absolute() for name, *_ in INGEST_PLAN}
    study = study_demo.prepare(console, node_dirs, hospitals_dir)
    emergency = lookup_demo.prepare(console, node_dirs, hospitals_dir)

    def multi_centre_study(network: RunningNetwork) -> None:
        console.print(Rule("[bold cyan]the multi-centre study (federated analytics)", align="left"))
        study_demo.run(console, network.nodes, study, network.client, network.workdir / "reports")

    def emergency_lookup(network: RunningNetwork) -> None:
        console.print(Rule("[bold cyan]emergency cross-hospital lookup", align="left"))
        with network.client("admin") as admin:
            lookup_demo.run(
                console, network.nodes, emergency, admin, network.client, network.password
            )

    network_demo(
        console,
        DEMO_DIR / "network",
        list(node_dirs.values()),
        steps=[multi_centre_study, emergency_lookup],
    )

    _step(console, "5. De-identification (notes and tables)")
    from medspace.deid.demo import demo as deid_demo

    deid_demo(console, hospitals_dir)

    _step(console, "Done")
    console.print(f"Everything the demo wrote is under ./{DEMO_DIR}. Next: `make test`.")


def main() -> int:
    console = Console()
    try:
        run(console)
    except MedSpaceError as error:
        console.print(f"[bold red]demo failed:[/] {error}")
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
