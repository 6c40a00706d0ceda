"""Analytics fixtures: simulated hospitals ingested into real nodes (SQLite, built once
per session; PostgreSQL per test), with the simulated people kept as the oracle."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from medspace.node import Node, init_node, open_node

from .population import Person, outcomes, simulate

HOSPITALS = ("h1", "h2", "h3")
PATIENTS = 400


@dataclass(frozen=True)
class Hospital:
    name: str
    directory: Path
    people: list[Person]


@pytest.fixture(scope="session")
def hospitals(tmp_path_factory: pytest.TempPathFactory) -> list[Hospital]:
    """Three simulated hospitals of 400 patients each, in SQLite nodes (read-only use)."""
    base = tmp_path_factory.mktemp("analytics-nodes")
    built = []
    for seed, name in enumerate(HOSPITALS, start=1):
        people = simulate(PATIENTS, seed=seed, prefix=f"{name}-p")
        init_node(base / name, name)
        with open_node(base / name) as node:
            node.store.ingest(outcomes(people), source=name)
        built.append(Hospital(name, base / name, people))
    return built


@pytest.fixture
def opened(hospitals: list[Hospital]) -> Iterator[list[Node]]:
    """The three hospitals' nodes, opened; closed afterwards."""
    nodes = [open_node(h.directory) for h in hospitals]
    yield nodes
    for node in nodes:
        node.close()


@pytest.fixture
def pg_hospital(tmp_path: Path, pg_schema_url: str) -> Iterator[tuple[Node, list[Person]]]:
    """One simulated hospital (400 patients) on PostgreSQL, in a fresh schema."""
    people = simulate(PATIENTS, seed=1, prefix="h1-p")
    init_node(tmp_path / "pg", "h1", pg_schema_url)
    node = open_node(tmp_path / "pg")
    node.store.ingest(outcomes(people), source="h1")
    yield node, people
    node.close()
