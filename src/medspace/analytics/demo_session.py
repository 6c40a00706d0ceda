"""The demo's analysis-session scene: the researcher explores the study's cohort statistic
after statistic (docs/analytics.md, "Analysis sessions"), and the demo checks each answer
against the one-shot query of the same statistic: both show the same values and hide the
same cells, because each node protects every answer about one cohort, in sessions and
queries alike, together with what it released about that cohort before."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console

from medspace.analytics.errors import AnalyticsError
from medspace.hub import HubClient, HubRequestError

FURTHER: list[dict[str, Any]] = [
    {"id": "by_band", "kind": "count", "by": ["age_band"], "label": "Patients by age band"},
    {"id": "by_sex", "kind": "count", "by": ["sex"], "label": "Patients by sex"},
    {
        "id": "rate_by_band",
        "kind": "proportion",
        "variable": "responded",
        "by": ["age_band"],
        "label": "Response rate by age band",
    },
]


class SessionDemoError(AnalyticsError):
    """The session scene did not give what the one-shot queries give."""


def run_session(console: Console, alice: HubClient, project_id: str, spec: dict[str, Any]) -> None:
    """Open a session with `spec`, ask `FURTHER` one by one, compare each with its
    one-shot query, show that a kind the opening did not ask for is refused, close."""
    started = time.perf_counter()
    opened = alice.open_session(project_id, spec)
    if opened["status"] != "completed":
        raise SessionDemoError(f"the session did not open: {opened.get('reason')}")
    session = opened["session"]["id"]
    console.print(
        f"[bold]c.[/] alice opens an analysis session on {project_id} "
        f"({time.perf_counter() - started:.2f} s: the nodes select the cohort once, keep it "
        "in memory and answer further statistics from it)"
    )
    try:
        started = time.perf_counter()
        answers = [alice.ask_session(project_id, session, [stat]) for stat in FURTHER]
        elapsed = time.perf_counter() - started
        hidden = 0
        for stat, answer in zip(FURTHER, answers, strict=True):
            alone = alice.run_query(project_id, {**spec, "statistics": [stat]})
            if answer["status"] != "completed":
                raise SessionDemoError(f"{stat['id']} was not answered in the session")
            hidden += _same_rows(stat["id"], _rows(answer), _rows(alone))
        console.print(
            f"    {len(FURTHER)} further statistics in {elapsed:.2f} s "
            f"({elapsed / len(FURTHER) * 1000:.0f} ms each); each equals its one-shot query, "
            f"values and {hidden} hidden row(s) alike (checked: the nodes protect every "
            "answer about this cohort with what they released about it before); each is "
            "decided and ledgered at the hub and at every node"
        )
        table = {"id": "x", "kind": "table", "variables": ["age_band", "sex"]}
        try:
            alice.ask_session(project_id, session, [table])
        except HubRequestError as refused:
            console.print(
                f"    a table, which the signed opening did not ask for: refused ({refused})"
            )
        else:
            raise SessionDemoError("a statistic kind outside the session was answered")
    finally:
        alice.close_session(project_id, session)
    console.print("    session closed: the nodes dropped the cohort")


def _rows(answer: dict[str, Any]) -> list[Any]:
    return [row for s in answer["result"]["statistics"] for row in s["rows"]]


def _same_rows(statistic: str, session: list[Any], alone: list[Any]) -> int:
    """How many rows both hide; raises `SessionDemoError` when the session and the query
    differ in a row's labels, values or whether it is hidden."""
    if [r["labels"] for r in session] != [r["labels"] for r in alone]:
        raise SessionDemoError(f"{statistic} in the session has other rows than its query")
    for mine, theirs in zip(session, alone, strict=True):
        if bool(mine["suppressed"]) != bool(theirs["suppressed"]):
            raise SessionDemoError(f"{statistic}: the session and its query hide other rows")
        if not mine["suppressed"] and mine["values"] != theirs["values"]:
            raise SessionDemoError(f"{statistic} in the session differs from its query")
    return sum(1 for row in session if row["suppressed"])
