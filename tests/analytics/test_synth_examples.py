"""The two example specs on hospitals written by `medspace.synth` and read through the
real connectors (FHIR, HL7 v2, CSV), checked against Python over the records the store
gives back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from medspace.analytics import QuerySpec, compute_local, design_matrix, layout
from medspace.connectors import read_any
from medspace.node import init_node, open_node

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"


@dataclass(frozen=True)
class Built:
    nodes: list[Path]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    from medspace.synth import generate

    base = tmp_path_factory.mktemp("synth-examples")
    generate(base / "synth", hospitals=3, patients=60, seed=3)
    nodes = []
    for source in sorted(p for p in (base / "synth").iterdir() if p.is_dir()):
        init_node(base / f"node-{source.name}", source.name)
        with open_node(base / f"node-{source.name}") as node:
            node.store.ingest(read_any(source), source=source.name)
        nodes.append(base / f"node-{source.name}")
    return Built(nodes)


def _codes(node_dir: Path, kind: str) -> dict[str, set[tuple[str, str]]]:
    found: dict[str, set[tuple[str, str]]] = {}
    with open_node(node_dir) as node:
        for record in node.store.iter_records(kind):
            found.setdefault(record.patient_id, set()).add((record.code.system, record.code.code))  # type: ignore[attr-defined]
    return found


def test_hcc_example_counts_the_treated_and_assessed_patients(built: Built) -> None:
    spec = QuerySpec.parse(json.loads((EXAMPLES / "hcc-response.json").read_text()))
    seen = 0
    for node_dir in built.nodes:
        conditions = _codes(node_dir, "condition")
        drugs = _codes(node_dir, "drug")
        observations = _codes(node_dir, "observation")
        expected = {
            p
            for p, codes in conditions.items()
            if ("ICD-10", "C22.0") in codes
            and ("ATC", "L01EX02") in drugs.get(p, set())
            and ("LOINC", "88040-1") in observations.get(p, set())
        }
        with open_node(node_dir) as node:
            result = compute_local(node.store, spec, min_cell_size=1)
        assert result.cohort_size == len(expected)
        assert len(result.values) == len(layout(spec))
        seen += len(expected)
    assert seen > 0  # the check has something to count


def test_mi_example_builds_a_design_matrix_of_complete_cases(built: Built) -> None:
    spec = QuerySpec.parse(json.loads((EXAMPLES / "mi-logistic.json").read_text()))
    for node_dir in built.nodes:
        with open_node(node_dir) as node:
            patients = {
                p.source_id: p
                for p in node.store.iter_records("patient")  # type: ignore[attr-defined]
            }
            hba1c = {
                m.patient_id
                for m in node.store.iter_records("measurement")
                if (m.code.system, m.code.code) == ("LOINC", "4548-4") and m.value is not None  # type: ignore[attr-defined]
            }
            x, y = design_matrix(node.store, spec, "mi_model")
        complete = [
            pid
            for pid in hba1c
            if patients[pid].birth_date is not None and patients[pid].sex in ("female", "male")
        ]
        assert complete and x.shape == (len(complete), 6)
        assert len(y) == len(complete)
