"""`make demo`'s emergency-lookup step, in two parts the network demo calls.

`prepare(...)`, before the hub and nodes start: every node gets the same network linkage
key (as stewards would install it out of band) and indexes its patients' tokens; each
node's standing policy is extended to answer emergency lookups (ETREAT) and to allow
break-glass; one shared patient opts out of ETREAT at one hospital. It picks the
scenario from the synthetic ground truth (`linkage_truth.json`): the showcase person
known at three hospitals (at one with a typo in the name and no ID), and a shared person
who opted out.

`run(...)`, while the network runs: a clinician of the asking hospital looks up the
showcase person (found at all three, one by a fuzzy match) and the opted-out person
(absent where they opted out), then breaks the glass for them (returned there, because
that node allows break-glass), and the review list of that node shows the event.

The patients' identities are read from the asking hospital's own store (the clinician
has the patient in front of them) and are never printed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from medspace.errors import MedSpaceError
from medspace.hub.client import HubClient
from medspace.lookup.ask import LookupOutcome, PatientInput, ask
from medspace.lookup.review import LookupLog
from medspace.lookup.timeline import render
from medspace.model import Patient
from medspace.node import open_node
from medspace.node.standing import load_consent, load_node_policy, save_consent, save_node_policy
from medspace.policy import Purpose


class LookupDemoError(MedSpaceError):
    """The lookup demo could not be set up or did not show what it should."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """Who asks and for whom (identities stay in memory, never printed)."""

    asker: str
    showcase: PatientInput
    showcase_nodes: tuple[str, ...]
    opted_out: PatientInput
    opted_out_nodes: tuple[str, ...]
    opt_out_node: str

    def __repr__(self) -> str:
        return f"Scenario(asker={self.asker}, opt_out_node={self.opt_out_node})"


def _pick_showcase(persons: list[dict[str, Any]]) -> dict[str, Any]:
    marked = [p for p in persons if p.get("showcase")]
    if marked:
        return marked[0]
    widest = max(persons, key=lambda p: (len(p["records"]), p.get("noise") is not None))
    return widest


def _patient_input(node_dir: Path, patient_id: str) -> PatientInput:
    with open_node(node_dir) as node:
        for record in node.store.iter_records("patient"):
            if isinstance(record, Patient) and record.source_id == patient_id:
                ident = record.identity
                return PatientInput(
                    national_id=ident.national_id,
                    id_system=ident.national_id_system if ident.national_id else None,
                    family_name=ident.family_name,
                    given_name=ident.given_name,
                    birth_date=record.birth_date,
                    sex=record.sex if record.sex in ("male", "female") else None,
                )
    raise LookupDemoError("a patient of the scenario is missing from its node's store")


def prepare(console: Console, nodes: dict[str, Path], hospitals_dir: Path) -> Scenario:
    """Install the linkage key and index, extend the policies, record one opt-out, and
    pick the scenario (see the module docstring)."""
    from medspace.linkage import KEY_FILE, LinkageKey, write_key_file
    from medspace.linkage.index import rebuild_index

    key = LinkageKey.generate()
    for name, directory in nodes.items():
        if not (directory / KEY_FILE).exists():
            write_key_file(directory / KEY_FILE, key)
        with open_node(directory) as node:
            indexed = rebuild_index(node.store, node.linkage_key or key)
        policy = load_node_policy(directory, name)
        purposes = set(policy.allowed_purposes) or {Purpose.HRESCH}
        computations = set(policy.allowed_computations) or {"count"}
        save_node_policy(
            directory,
            policy.model_copy(
                update={
                    "allowed_purposes": frozenset(purposes | {Purpose.ETREAT}),
                    "allowed_computations": frozenset(computations),
                    "break_glass_allowed": True,
                }
            ),
        )
        console.print(
            f"  {name}: linkage key installed, {indexed} patients' tokens indexed; "
            "policy answers ETREAT lookups and allows break-glass"
        )
    truth = json.loads((hospitals_dir / "linkage_truth.json").read_text(encoding="utf-8"))
    persons = [p for p in truth["persons"] if all(r["hospital"] in nodes for r in p["records"])]
    if not persons:
        raise LookupDemoError("the synthetic hospitals share no patient: nothing to look up")
    showcase = _pick_showcase(persons)
    asker = showcase["records"][0]["hospital"]
    others = [
        p
        for p in persons
        if p is not showcase
        and p["records"][0]["hospital"] == asker
        and len(p["records"]) >= 2
        and p.get("noise") is None
    ]
    if not others:
        raise LookupDemoError("no second shared patient of the asking hospital to opt out")
    opted = others[0]
    opt_out_node = opted["records"][1]["hospital"]
    with open_node(nodes[opt_out_node]) as node:
        pseudonym = node.store.pseudonym(opted["records"][1]["patient_id"])
    consent = load_consent(nodes[opt_out_node]).with_opt_out(pseudonym, [Purpose.ETREAT])
    save_consent(nodes[opt_out_node], consent.to_document())
    console.print(
        f"  one patient shared by {asker} and {opt_out_node} opted out of ETREAT at {opt_out_node}"
    )
    return Scenario(
        asker=asker,
        showcase=_patient_input(nodes[asker], showcase["records"][0]["patient_id"]),
        showcase_nodes=tuple(r["hospital"] for r in showcase["records"]),
        opted_out=_patient_input(nodes[asker], opted["records"][0]["patient_id"]),
        opted_out_nodes=tuple(r["hospital"] for r in opted["records"]),
        opt_out_node=opt_out_node,
    )


def run(
    console: Console,
    nodes: dict[str, Path],
    scenario: Scenario,
    admin: HubClient,
    client: Callable[[str], HubClient],
    password: str,
    *,
    deadline: float = 2.0,
) -> None:
    """The lookups (see the module docstring); raises `LookupDemoError` if the network
    does not show what it should."""
    clinician = f"dr-{scenario.asker}"
    admin.post(
        "/users",
        {"name": clinician, "role": "clinician", "node": scenario.asker, "password": password},
    )
    with client(clinician) as hub, open_node(nodes[scenario.asker]) as node:
        console.print(
            f"[bold]a.[/] {clinician} looks up a patient known at "
            f"{len(scenario.showcase_nodes)} hospitals (ETREAT)"
        )
        found = ask(
            node,
            hub,
            clinician=clinician,
            deadline=deadline,
            patient=scenario.showcase,
            reason="unconscious after a fall, no history on file here",
        )
        render(console, found)
        _expect(found, set(scenario.showcase_nodes), "the showcase patient")
        console.print(
            f"[bold]b.[/] the same clinician looks up a patient who opted out of ETREAT at "
            f"{scenario.opt_out_node}"
        )
        normal = ask(
            node,
            hub,
            clinician=clinician,
            deadline=deadline,
            patient=scenario.opted_out,
            reason="chest pain, prior cardiac history needed",
        )
        expected = set(scenario.opted_out_nodes) - {scenario.opt_out_node}
        _expect(normal, expected, "the opted-out patient under ETREAT")
        console.print(
            f"    found at {', '.join(sorted(a.node for a in normal.matched))}; "
            f"{scenario.opt_out_node} answered 'no match' (consent respected)"
        )
        console.print("[bold]c.[/] the clinician breaks the glass (BTG), with a justification")
        glass = ask(
            node,
            hub,
            clinician=clinician,
            deadline=deadline,
            patient=scenario.opted_out,
            break_glass=True,
            reason="cardiac arrest, no consent obtainable, history needed to treat",
        )
        _expect(glass, set(scenario.opted_out_nodes), "the opted-out patient under break-glass")
        console.print(f"    found at {', '.join(sorted(a.node for a in glass.matched))}")
    log = LookupLog(nodes[scenario.opt_out_node])
    try:
        events = [e for e in log.events(break_glass_only=True) if e.request == glass.request]
    finally:
        log.close()
    if not events:
        raise LookupDemoError("the break-glass event is missing from the review list")
    console.print(
        f"[bold]d.[/] $ medspace lookup review --node {nodes[scenario.opt_out_node]}: "
        f"break-glass event {events[0].request} by {events[0].clinician}@{events[0].requester}, "
        f"status {events[0].status}, [yellow]to review[/] (mark it with --mark ... "
        "--justified/--unjustified)"
    )


def _expect(outcome: LookupOutcome, nodes: set[str], what: str) -> None:
    found = {a.node for a in outcome.matched}
    if found != nodes:
        raise LookupDemoError(
            f"{what} was found at {sorted(found) or 'no hospital'}, expected {sorted(nodes)}"
        )
