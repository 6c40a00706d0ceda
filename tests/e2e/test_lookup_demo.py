"""The `make demo` lookup step on synthetic hospitals: a hub and three nodes on loopback
(threads), nodes ingested from the synthetic FHIR export."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from tests.hub.support import PASSWORD, HubThread, NodeThread, make_hub, wait_until

from medspace.connectors import read_any
from medspace.lookup import demo
from medspace.node import init_node, open_node
from medspace.synth import generate


@pytest.mark.slow  # `make demo` runs the same steps; tests/e2e/test_lookup.py covers each
def test_demo_finds_the_showcase_everywhere_and_respects_the_opt_out(tmp_path: Path) -> None:
    hospitals = tmp_path / "hospitals"
    generate(hospitals, hospitals=3, patients=60, seed=7, locale="mixed")
    nodes = {}
    for name in ("h1", "h2", "h3"):
        init_node(tmp_path / name, name)
        with open_node(tmp_path / name) as node:
            node.store.ingest(read_any(hospitals / name / "fhir" / "ndjson"), source="synth")
        nodes[name] = tmp_path / name
    console = Console(record=True, width=140)
    scenario = demo.prepare(console, nodes, hospitals)
    make_hub(tmp_path / "hub", nodes)
    hub = HubThread(tmp_path / "hub").start()
    threads = [NodeThread(d, hub.url).start() for d in nodes.values()]
    try:
        wait_until(lambda: set(hub.connected()) == set(nodes), "every node to connect")
        with hub.client("admin") as admin:
            demo.run(console, nodes, scenario, admin, hub.client, PASSWORD, deadline=30.0)
    finally:
        for thread in threads:
            thread.stop()
        hub.stop()
    text = console.export_text()
    assert "timeline" in text and "to review" in text
    assert "no match" in text
    assert "fuzzy" in text  # the showcase's record with a typo and no ID, found anyway
