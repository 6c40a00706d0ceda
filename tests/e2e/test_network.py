"""End to end: hub and three nodes as separate processes on loopback sockets, over plain
HTTP and over TLS with certificates from `init_certs` (the demo does every step)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from tests.hub.support import make_node

from medspace.network_demo import demo


@pytest.mark.parametrize(
    "tls", [pytest.param(False, marks=pytest.mark.slow), True], ids=["plain", "tls"]
)
def test_demo_network_runs_end_to_end(tmp_path: Path, tls: bool) -> None:
    nodes = [
        make_node(tmp_path / "h1", "h1", 30, 14),
        make_node(tmp_path / "h2", "h2", 20, 3),
        make_node(tmp_path / "h3", "h3", 20, 12),
    ]
    console = Console(record=True, width=120)
    demo(console, tmp_path / "net", nodes, tls=tls)
    text = console.export_text()
    assert "steward of h3 denied" in text
    assert "VERIFIED" in text
    assert "<10" in text  # h2's 3 patients are below the minimum cell size
    assert "14" in text
