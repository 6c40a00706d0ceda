"""A small emergency-lookup network for tests: three hospitals that share one network
linkage key; patient "A" is known at all three (at h3 with a typo in the name and no
ID), patient "B" only at h2, where B opted out of ETREAT; h2 allows break-glass."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from tests.hub.support import PASSWORD, HubThread, NodeThread, wait_until

from medspace.connectors.base import Parsed
from medspace.hub import HubCore, init_hub
from medspace.identity import Role, User, public_key_text
from medspace.linkage import KEY_FILE, LinkageKey, write_key_file
from medspace.model import Allergy, Code, Condition, Drug, Encounter, Identity, Measurement, Patient
from medspace.node import init_node, open_node
from medspace.node.standing import save_consent, save_node_policy
from medspace.policy import NodePolicy, Purpose

A_SSN = "219-09-9999"
A = {"family_name": "Smith", "given_name": "Johnathan", "national_id": A_SSN}
A_DOB = date(1961, 3, 14)
B = {"family_name": "Okafor", "given_name": "Adaeze", "national_id": "078-05-1121"}
B_DOB = date(1975, 7, 2)
UNKNOWN_SSN = "536-22-8726"
NODES = ("h1", "h2", "h3")


def _patient(node: str, n: int, fields: dict[str, str | None], dob: date, sex: str) -> Patient:
    identity = Identity(
        family_name=fields.get("family_name"),
        given_name=fields.get("given_name"),
        national_id=fields.get("national_id"),
        national_id_system="US-SSN" if fields.get("national_id") else None,
    )
    return Patient(f"{node}-P{n}", sex, dob, identity=identity)  # type: ignore[arg-type]


def _history(node: str, pid: str, year: int) -> list[object]:
    return [
        Encounter(f"{pid}-E1", pid, "inpatient", start=None, code=None),
        Encounter(f"{pid}-E2", pid, "emergency"),
        Condition(
            f"{pid}-C1",
            pid,
            Code("ICD-10", "I21.0", "Acute MI of anterior wall"),
            onset=date(year, 5, 1),
        ),
        Drug(
            f"{pid}-D1",
            pid,
            Code("ATC", "B01AC06", "acetylsalicylic acid"),
            start=date(2025, 1, 10),
            status="active",
        ),
        Allergy(
            f"{pid}-A1",
            pid,
            Code("SNOMED CT", "91936005", "Penicillin allergy"),
            reaction="anaphylaxis",
            criticality="high",
        ),
        Measurement(
            f"{pid}-M1",
            pid,
            Code("LOINC", "2160-0", "Creatinine"),
            time=date(year, 5, 2),
            value=1.1 + (year % 3) / 10,
            unit="mg/dL",
            ref_low=0.6,
            ref_high=1.2,
        ),
    ]


def make_lookup_node(directory: Path, name: str, key: LinkageKey, *, fillers: int = 5) -> Path:
    """One hospital with filler patients and its share of patients A and B."""
    init_node(directory, name)
    write_key_file(directory / KEY_FILE, key)
    records: list[object] = []
    for n in range(fillers):
        fields = {"family_name": f"Filler{n}", "given_name": f"Person{name}", "national_id": None}
        records.append(_patient(name, 100 + n, fields, date(1980 + n, 1, 1 + n), "male"))
    if name == "h3":
        typo = {"family_name": "Smiht", "given_name": "Johnathan", "national_id": None}
        records.append(_patient(name, 1, typo, A_DOB, "male"))
    else:
        records.append(_patient(name, 1, A, A_DOB, "male"))
    records += _history(name, f"{name}-P1", 2015 + NODES.index(name))
    if name == "h2":
        records.append(_patient(name, 2, B, B_DOB, "female"))
        records += _history(name, f"{name}-P2", 2020)
    with open_node(directory) as node:
        outcomes = [Parsed("test", f"unit {i}", (r,)) for i, r in enumerate(records)]
        node.store.ingest(outcomes, source="test")  # type: ignore[arg-type]
        if name == "h2":
            save_consent(directory, {node.store.pseudonym("h2-P2"): ["ETREAT"]})
    save_node_policy(
        directory,
        NodePolicy(
            node=name,
            allowed_purposes=frozenset({Purpose.ETREAT, Purpose.HRESCH}),
            allowed_computations=frozenset({"count"}),
            break_glass_allowed=name in ("h1", "h2"),
        ),
    )
    return directory


def make_lookup_hub(directory: Path, nodes: dict[str, Path]) -> None:
    """A hub with the nodes, an admin, clinicians dr-<node>, stewards and a researcher."""
    init_hub(directory)
    core = HubCore(directory)
    try:
        core.add_user(User("admin", Role.ADMIN), PASSWORD)
        core.add_user(User("alice", Role.RESEARCHER), PASSWORD)
        for name, node_dir in nodes.items():
            core.add_user(User(f"dr-{name}", Role.CLINICIAN, name), PASSWORD)
            core.add_user(User(f"steward-{name}", Role.STEWARD, name), PASSWORD)
            with open_node(node_dir) as node:
                core.register_node(name, public_key_text(node.identity_public_key))
    finally:
        core.close()


@contextmanager
def lookup_network(
    tmp_path: Path,
) -> Iterator[tuple[HubThread, dict[str, NodeThread], dict[str, Path]]]:
    """The three hospitals running against a hub, all connected."""
    key = LinkageKey.generate()
    dirs = {n: make_lookup_node(tmp_path / n, n, key) for n in NODES}
    make_lookup_hub(tmp_path / "hub", dirs)
    hub = HubThread(tmp_path / "hub").start()
    threads = {n: NodeThread(d, hub.url).start() for n, d in dirs.items()}
    try:
        wait_until(lambda: set(hub.connected()) == set(NODES), "every node to connect")
        # Each node announces its policy right after connecting; wait for the hub to have it.
        core = hub.app.state.core
        wait_until(lambda: all(core.node_policy(n) for n in NODES), "node policies")
        yield hub, threads, dirs
    finally:
        for thread in threads.values():
            thread.stop()
        hub.stop()
