"""Merge the hospitals' summaries into one picture and render it with Rich.

The clinician sees, first, what matters in an emergency: allergies and current drugs from
every hospital; then the latest lab values; then one timeline (newest first) of
diagnoses, drugs started and last encounters, each row naming its hospital. Which
hospitals answered, how each matched (exact or fuzzy, with the score), and whether the
result is partial is shown on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from medspace.lookup.ask import LookupOutcome


@dataclass(frozen=True, slots=True)
class Event:
    """One dated line of the merged timeline."""

    day: str
    node: str
    kind: str
    what: str


def _text(value: object) -> str:
    """Text from the network as it may be printed: control characters dropped and Rich
    markup escaped (a hospital's "[/x]" must neither break nor restyle the view)."""
    return escape("".join(c for c in str(value) if c.isprintable()))


def _label(item: dict[str, Any]) -> str:
    code = f"{item.get('system') or ''} {item.get('code') or ''}".strip()
    text = item.get("text") or ""
    return f"{text} ({code})" if text else code


def timeline(outcome: LookupOutcome) -> list[Event]:
    """Every dated fact of every matched summary, newest first."""
    events = []
    for answer in outcome.matched:
        for patient in answer.patients:
            for d in patient.get("diagnoses", []):
                if d.get("date"):
                    events.append(Event(d["date"], answer.node, "diagnosis", _label(d)))
            for d in patient.get("drugs", []):
                if d.get("start"):
                    events.append(Event(d["start"], answer.node, "drug started", _label(d)))
            if patient.get("last_encounter"):
                events.append(Event(patient["last_encounter"], answer.node, "last encounter", ""))
    events.sort(key=lambda e: (e.day, e.node, e.kind, e.what), reverse=True)
    return events


def merged(outcome: LookupOutcome) -> dict[str, Any]:
    """The merged view as JSON (what the node API returns)."""
    allergies: list[dict[str, Any]] = []
    drugs: list[dict[str, Any]] = []
    labs: dict[tuple[Any, Any], dict[str, Any]] = {}
    for answer in outcome.matched:
        for patient in answer.patients:
            allergies += [{**a, "node": answer.node} for a in patient.get("allergies", [])]
            drugs += [
                {**d, "node": answer.node} for d in patient.get("drugs", []) if d.get("current")
            ]
            for lab in patient.get("labs", []):
                key = (lab.get("system"), lab.get("code"))
                if key not in labs or (lab.get("date") or "") > (labs[key].get("date") or ""):
                    labs[key] = {**lab, "node": answer.node}
    return {
        "request": outcome.request,
        "purpose": outcome.purpose,
        "partial": outcome.partial,
        "missing": outcome.missing,
        "answers": [
            {
                "node": a.node,
                "status": a.status,
                "answer": a.answer,
                "matches": [p.get("match") for p in a.patients],
                "withheld": sum(p.get("withheld", 0) for p in a.patients),
                "reason": a.reason,
                "first_contact": a.first_contact,
            }
            for a in outcome.answers
        ],
        "allergies": allergies,
        "current_drugs": drugs,
        "latest_labs": sorted(labs.values(), key=lambda x: x.get("date") or "", reverse=True),
        "timeline": [_event(e) for e in timeline(outcome)],
    }


def _event(e: Event) -> dict[str, str]:
    return {"date": e.day, "node": e.node, "kind": e.kind, "what": e.what}


def _why_partial(outcome: LookupOutcome) -> str:
    """Which hospitals' records the timeline lacks, and why."""
    reasons = [f"{', '.join(outcome.missing)} did not answer"] if outcome.missing else []
    reasons += [f"{a.node} {a.status}" for a in outcome.answers if a.status != "ok"]
    return _text("; ".join(reasons) or "the hub's answer stream was incomplete or unreadable")


def render(console: Console, outcome: LookupOutcome) -> None:
    """Print the merged view (no identifiers: the summaries hold none)."""
    view = merged(outcome)
    head = Table("hospital", "answer", "match", "seconds", title="answers")
    for a in outcome.answers:
        kinds = ", ".join(
            f"{p['match']['kind']} {p['match']['score']:.2f}" for p in a.patients if p.get("match")
        )
        head.add_row(
            _text(a.node),
            _text(a.answer or a.status),
            _text(kinds or (a.reason or "")[:60]),
            f"{a.seconds:.3f}",
        )
    for node in outcome.missing:
        head.add_row(_text(node), "[yellow]no answer[/]", "", "")
    console.print(head)
    if outcome.partial:
        console.print(f"[yellow]partial result:[/] {_why_partial(outcome)}")
    for a in view["answers"]:
        if a["withheld"]:
            console.print(
                f"[yellow]{_text(a['node'])} withheld {a['withheld']} value(s)[/] that looked "
                "like free text or identifiers; that hospital's own record has them"
            )
    first = [a.node for a in outcome.answers if a.first_contact]
    if first:
        console.print(
            f"[yellow]first contact with {_text(', '.join(first))}:[/] the key their answers are "
            "checked with came from the hub's registry; a steward can confirm its fingerprint "
            "(lookup-peers.json) with that hospital"
        )
    if not outcome.matched:
        console.print("no hospital knows this patient (or none may say so under this purpose)")
        return
    allergies = Table("allergy", "criticality", "reaction", "hospital", title="allergies")
    for a in view["allergies"]:
        allergies.add_row(
            *(_text(v) for v in (_label(a), a.get("criticality") or "", a.get("reaction") or "")),
            _text(a["node"]),
        )
    console.print(allergies)
    drugs = Table("drug", "since", "status", "hospital", title="current drugs")
    for d in view["current_drugs"]:
        drugs.add_row(
            *(_text(v) for v in (_label(d), d.get("start") or "", d.get("status") or "", d["node"]))
        )
    console.print(drugs)
    labs = Table("lab", "value", "unit", "range", "date", "hospital", title="latest labs")
    for lab in view["latest_labs"]:
        low, high = lab.get("low"), lab.get("high")
        span = f"{low:g}-{high:g}" if low is not None and high is not None else ""
        labs.add_row(
            *(
                _text(v)
                for v in (
                    _label(lab),
                    f"{lab['value']:g}",
                    lab.get("unit") or "",
                    span,
                    lab.get("date") or "",
                    lab["node"],
                )
            )
        )
    console.print(labs)
    table = Table("date", "hospital", "event", "", title="timeline (newest first)")
    for e in timeline(outcome):
        table.add_row(*(_text(v) for v in (e.day, e.node, e.kind, e.what)))
    console.print(table)
