"""Study nodes for federated-query tests: synthetic patients built record by record from a
seeded generator, so a test knows every patient's features and can compute the expected
answer (and the pooled regression) itself, without the code under test."""

from __future__ import annotations

import base64
import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from tests.hub.support import HubThread, NodeThread, make_hub, wait_until

from medspace.connectors.base import Parsed
from medspace.hub import HubClient
from medspace.ledger import SignedEntry
from medspace.model import Code, Condition, Drug, Identity, Measurement, Observation, Patient
from medspace.node import init_node, open_node
from medspace.node.standing import save_node_policy
from medspace.policy import NodePolicy, Purpose

REFERENCE = date(2024, 1, 1)
KINDS = frozenset({"count", "mean", "variance", "histogram", "table", "proportion", "logistic"})
IMPROVED = Code("SNOMED CT", "268910001", "improved")
STABLE = Code("SNOMED CT", "359746009", "stable")
# The MI model the generator plants (intercept, age, male, diabetes, hypertension, hba1c).
TRUE_BETA = (-1.0, 0.6, 0.4, 0.7, 0.5, 0.3)


@dataclass(frozen=True)
class Person:
    """What a test needs to know of one generated patient."""

    age: int
    male: bool
    hcc: bool
    responded: bool
    diabetes: bool
    hypertension: bool
    hba1c: float
    mi: bool


def _age_on_reference(birth: date) -> int:
    years = REFERENCE.year - birth.year
    return years - ((REFERENCE.month, REFERENCE.day) < (birth.month, birth.day))


def make_study_node(
    directory: Path, name: str, patients: int, seed: int, kinds: frozenset[str] = KINDS
) -> tuple[Path, list[Person]]:
    """A node with `patients` generated patients and a standing policy allowing HRESCH
    with the given computation kinds (floor 5); returns the directory and the people."""
    rng = np.random.default_rng(seed)
    init_node(directory, name)
    people: list[Person] = []
    outcomes = []
    for n in range(patients):
        pid = f"{name}-P{n}"
        birth = date(1940, 1, 1) + timedelta(days=int(rng.integers(0, 60 * 365)))
        age = _age_on_reference(birth)
        male = bool(rng.random() < 0.5)
        hcc = bool(rng.random() < 0.5)
        responded = hcc and bool(rng.random() < (0.5 if age < 60 else 0.25))
        diabetes = bool(rng.random() < 0.3)
        hypertension = bool(rng.random() < 0.4)
        hba1c = round(float(5.0 + rng.random() * 4 + (1.0 if diabetes else 0.0)), 1)
        x = (1.0, (age - 60) / 10, float(male), float(diabetes), float(hypertension), hba1c - 6)
        logit = sum(b * v for b, v in zip(TRUE_BETA, x, strict=True))
        mi = bool(rng.random() < 1 / (1 + math.exp(-logit)))
        people.append(Person(age, male, hcc, responded, diabetes, hypertension, hba1c, mi))
        records: list[Any] = [
            Patient(
                source_id=pid,
                sex="male" if male else "female",
                birth_date=birth,
                identity=Identity(family_name=f"Family{n}", given_name=f"Given{n}"),
            ),
            Measurement(
                source_id=f"{pid}-A1C",
                patient_id=pid,
                code=Code("LOINC", "4548-4", "HbA1c"),
                time=date(2022, 3, 1),
                value=hba1c,
                unit="%",
            ),
        ]
        conditions = [
            ("C22.0", hcc),
            ("E11.9", diabetes),
            ("I10", hypertension),
            ("I21.9", mi),
        ]
        for code, present in conditions:
            if present:
                records.append(
                    Condition(
                        source_id=f"{pid}-{code}",
                        patient_id=pid,
                        code=Code("ICD-10", code, "x"),
                        onset=date(2022, 1, 1),
                    )
                )
        if hcc:
            records.append(
                Drug(
                    source_id=f"{pid}-SOR",
                    patient_id=pid,
                    code=Code("ATC", "L01EX02", "sorafenib"),
                    start=date(2022, 2, 1),
                )
            )
            records.append(
                Observation(
                    source_id=f"{pid}-RESP",
                    patient_id=pid,
                    code=Code("LOINC", "88040-1", "response"),
                    time=date(2022, 8, 1),
                    value_code=IMPROVED if responded else STABLE,
                )
            )
        outcomes.append(Parsed("test", f"line {n}", tuple(records)))
    with open_node(directory) as node:
        node.store.ingest(outcomes, source="test")
    save_node_policy(
        directory,
        NodePolicy(
            node=name,
            min_cell_floor=5,
            allowed_purposes=frozenset({Purpose.HRESCH}),
            allowed_computations=kinds,
        ),
    )
    return directory, people


HCC_SPEC: dict[str, Any] = {
    "title": "Sorafenib response by age band",
    "cohort": {
        "filters": [
            {"domain": "condition", "system": "ICD-10", "code": "C22*"},
            {"domain": "drug", "system": "ATC", "code": "L01EX02"},
        ]
    },
    "variables": {
        "age_band": {
            "kind": "age_band",
            "bands": [
                {"label": "<60", "min": 0, "max": 59},
                {"label": "60+", "min": 60, "max": 200},
            ],
        },
        "sex": {"kind": "sex"},
        "response": {
            "kind": "observation_category",
            "system": "LOINC",
            "code": "88040-1",
            "categories": [
                {"label": "improved", "codes": [{"system": "SNOMED CT", "code": "268910001"}]},
                {"label": "stable", "codes": [{"system": "SNOMED CT", "code": "359746009"}]},
            ],
        },
        "responded": {"kind": "is", "of": "response", "category": "improved"},
        "age": {"kind": "age"},
    },
    "statistics": [
        {"id": "patients", "kind": "count"},
        {"id": "rate", "kind": "proportion", "variable": "responded", "by": ["age_band"]},
        {"id": "by_band", "kind": "table", "variables": ["age_band", "response"]},
        {"id": "age", "kind": "mean", "variable": "age"},
    ],
}

MI_SPEC: dict[str, Any] = {
    "title": "MI model",
    "cohort": {"filters": [{"domain": "measurement", "system": "LOINC", "code": "4548-4"}]},
    "variables": {
        "mi": {"kind": "has", "domain": "condition", "system": "ICD-10", "code": "I21.9"},
        "age": {"kind": "age", "centre": 60, "scale": 10},
        "sex": {"kind": "sex"},
        "male": {"kind": "is", "of": "sex", "category": "male"},
        "diabetes": {"kind": "has", "domain": "condition", "system": "ICD-10", "code": "E11.9"},
        "hypertension": {"kind": "has", "domain": "condition", "system": "ICD-10", "code": "I10"},
        "hba1c": {"kind": "measurement", "system": "LOINC", "code": "4548-4", "centre": 6},
    },
    "statistics": [
        {
            "id": "mi_model",
            "kind": "logistic",
            "outcome": "mi",
            "covariates": ["age", "male", "diabetes", "hypertension", "hba1c"],
            "tolerance": 1e-10,
        }
    ],
}

STUDY_FIELDS = [
    "condition.code",
    "drug.code",
    "measurement.code",
    "measurement.value",
    "observation.code",
    "observation.value_code",
    "person.birth_date",
    "person.id",
    "person.sex",
]


def study_terms(project_id: str, nodes: list[str], **changes: Any) -> dict[str, Any]:
    """Terms of a research project allowing every kind the tests ask for."""
    now = datetime.now(UTC)
    terms: dict[str, Any] = {
        "id": project_id,
        "title": "Multi-centre study",
        "purpose": "HRESCH",
        "description": "Federated statistics over the study nodes.",
        "cohort": {"condition_codes": ["C22"], "code_system": "ICD-10"},
        "variables": STUDY_FIELDS,
        "computations": sorted(KINDS),
        "disclosure": {"min_cell_size": 5},
        "nodes": nodes,
        "starts_at": (now - timedelta(minutes=5)).isoformat(),
        "expires_at": (now + timedelta(days=30)).isoformat(),
    }
    terms.update(changes)
    return terms


def ledger_entries(client: HubClient, project: str) -> list[Any]:
    """Every ledger entry of `project`, parsed (as an auditor reads them)."""
    page = client.get("/ledger/entries", project=project, limit=10_000)
    return [SignedEntry.from_bytes(base64.b64decode(r["body"])).entry for r in page["entries"]]


def pooled_logistic(people: list[Person], tolerance: float = 1e-12) -> np.ndarray:
    """Newton-Raphson on the union of every node's patients (numpy, for comparison)."""
    x = np.array(
        [
            [
                1.0,
                (p.age - 60) / 10,
                float(p.male),
                float(p.diabetes),
                float(p.hypertension),
                p.hba1c - 6,
            ]
            for p in people
        ]
    )
    y = np.array([float(p.mi) for p in people])
    beta = np.zeros(x.shape[1])
    for _ in range(100):
        mu = 1 / (1 + np.exp(-(x @ beta)))
        gradient = x.T @ (y - mu)
        hessian = (x * (mu * (1 - mu))[:, None]).T @ x
        step = np.linalg.solve(hessian, gradient)
        beta = beta + step
        if np.max(np.abs(step)) < tolerance:
            break
    return beta


class StudyNetwork:
    """A hub and study nodes served in threads over real loopback sockets."""

    def __init__(self, hub: HubThread, nodes: dict[str, NodeThread], dirs: dict[str, Path]):
        self.hub = hub
        self.nodes = nodes
        self.dirs = dirs

    def announced(self) -> list[str]:
        """Nodes whose agreement key the hub holds now."""
        channel = self.hub.app.state.channel
        return [n for n in channel.connected() if channel.announcement(n) is not None]

    def stop_node(self, name: str) -> None:
        """Stop one node and wait until the hub sees it gone."""
        self.nodes[name].stop()
        wait_until(lambda: name not in self.hub.connected(), f"{name} to disconnect")

    def project(self, project_id: str, **changes: Any) -> HubClient:
        """File a study project over every node as alice, approved by every steward;
        alice's client."""
        alice = self.hub.client("alice")
        alice.post("/projects", study_terms(project_id, sorted(self.dirs), **changes))
        for name in self.dirs:
            self.hub.client(f"steward-{name}").post(
                f"/projects/{project_id}/approve", {"reason": "ethics approval on file"}
            )
        return alice

    def start_node(self, name: str) -> None:
        """(Re)start one node and wait until it has announced its key."""
        self.nodes[name] = NodeThread(self.dirs[name], self.hub.url).start()
        wait_until(lambda: name in self.announced(), f"{name} to announce")


@contextlib.contextmanager
def study_network(
    tmp_path: Path,
    nodes: dict[str, tuple[int, int]],
    kinds: dict[str, frozenset[str]] | None = None,
) -> Iterator[tuple[StudyNetwork, dict[str, list[Person]]]]:
    """A running hub with study nodes (name -> (patients, seed)), all announced."""
    dirs: dict[str, Path] = {}
    people: dict[str, list[Person]] = {}
    for name, (patients, seed) in nodes.items():
        allowed = (kinds or {}).get(name, KINDS)
        dirs[name], people[name] = make_study_node(tmp_path / name, name, patients, seed, allowed)
    make_hub(tmp_path / "hub", dirs)
    hub = HubThread(tmp_path / "hub").start()
    hub.pin_stewards(dirs)
    threads = {name: NodeThread(d, hub.url).start() for name, d in dirs.items()}
    network = StudyNetwork(hub, threads, dirs)
    try:
        wait_until(lambda: set(network.announced()) == set(nodes), "every node to announce")
        yield network, people
    finally:
        for thread in network.nodes.values():
            thread.stop()
        hub.stop()
