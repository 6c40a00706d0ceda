"""`medspace lookup`: a clinician's emergency lookup from their node, and the steward's
review of the node's lookup log (`review`, `flag`), mounted by `medspace.cli`.

    medspace lookup --node DIR --as USER [--id ID [--id-system CN-RID|US-SSN]]
                    [--name N --dob D --sex S] --reason "..." [--break-glass] [--hub URL]
    medspace lookup review --node DIR [--mark REQUEST --justified|--unjustified --note ...]
    medspace lookup flag --node DIR PATIENT_ID --vip|--staff
    medspace lookup serve-api --node DIR --hub URL [--port P]

The password comes from $MEDSPACE_PASSWORD or a prompt, like `medspace login`. Nothing
printed holds an identifier: summaries carry none, and input errors never echo the input.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from medspace.errors import MedSpaceError
from medspace.hub.cli import fail, read_password

console = Console()
app = typer.Typer(
    help="Emergency cross-hospital lookup (ETREAT, or break-glass where allowed), and its review.",
    invoke_without_command=True,
)

NodeDir = Annotated[Path, typer.Option("--node", help="The node directory (from `node init`).")]


def _hub_url(hub: str | None) -> str:
    if hub:
        return hub
    from medspace.hub.client import load_session

    return load_session().hub_url


@app.callback()
def lookup(
    ctx: typer.Context,
    node: Annotated[Path | None, typer.Option("--node", help="Your node's directory.")] = None,
    user: Annotated[str | None, typer.Option("--as", help="Your (clinician) user name.")] = None,
    national_id: Annotated[str | None, typer.Option("--id", help="Resident ID / SSN.")] = None,
    id_system: Annotated[
        str | None, typer.Option("--id-system", help="CN-RID or US-SSN (guessed if left out).")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Full name as written: 张伟, John Smith.")
    ] = None,
    dob: Annotated[str | None, typer.Option("--dob", help="Date of birth, YYYY-MM-DD.")] = None,
    sex: Annotated[str | None, typer.Option("--sex", help="male, female, other.")] = None,
    phone: Annotated[
        str | None,
        typer.Option("--phone", help="Phone number if known: confirms a match by name."),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why you need the records now (required).")
    ] = None,
    break_glass: Annotated[
        bool,
        typer.Option("--break-glass", help="Override opt-outs where nodes allow it; reviewed."),
    ] = False,
    hub: Annotated[
        str | None, typer.Option("--hub", help="Hub URL (default: your login's).")
    ] = None,
    deadline: Annotated[float, typer.Option(min=0.1, max=30, help="Seconds to wait.")] = 2.0,
) -> None:
    """Look a patient up at every hospital and print the merged timeline."""
    if ctx.invoked_subcommand is not None:
        return
    from medspace.hub.client import HubClient
    from medspace.lookup._linkage import tokens_from_input
    from medspace.lookup.ask import PatientInput, ask, check_reason
    from medspace.lookup.errors import LookupInputError
    from medspace.lookup.timeline import render
    from medspace.node import open_node

    try:
        if node is None or user is None:
            raise LookupInputError("give --node DIR and --as USER (see --help)")
        patient = PatientInput.parse(
            national_id=national_id,
            id_system=id_system,
            name=name,
            birth_date=dob,
            sex=sex,
            phone=phone,
        )
        check_reason(reason)
        with open_node(node) as opened, HubClient(_hub_url(hub)) as client:
            # Tokens first: a wrong check digit is refused before anything is sent.
            tokens_from_input(
                opened,
                national_id=patient.national_id,
                id_system=patient.id_system,
                name=patient.name,
                birth_date=patient.birth_date,
                sex=patient.sex,
                phone=patient.phone,
            )
            password = read_password(False)
            client.login(user, password)
            outcome = ask(
                opened,
                client,
                clinician=user,
                patient=patient,
                reason=reason or "",
                break_glass=break_glass,
                deadline=deadline,
                on_answer=lambda a: console.print(
                    f"  {a.node}: {a.answer or a.status} ({a.seconds:.3f} s)",
                    highlight=False,
                    markup=False,
                ),
            )
    except MedSpaceError as error:
        fail(error)
    purpose = "BREAK-GLASS (BTG)" if break_glass else "ETREAT"
    console.print(
        f"lookup {outcome.request} ({purpose}) answered by {len(outcome.answers)} "
        f"hospital(s) in {outcome.seconds:.3f} s; ledgered",
        highlight=False,
    )
    render(console, outcome)


@app.command("review")
def review(
    node: NodeDir,
    mark: Annotated[str | None, typer.Option("--mark", help="A request id to mark.")] = None,
    justified: Annotated[
        bool | None, typer.Option("--justified/--unjustified", help="The verdict.")
    ] = None,
    note: Annotated[str, typer.Option("--note", help="The steward's note (kept locally).")] = "",
    hub: Annotated[
        str | None, typer.Option("--hub", help="Send the review entry now (your login's hub).")
    ] = None,
) -> None:
    """List break-glass events and alerts; with --mark, record the steward's verdict
    (ledgered by the node; sent with its next lookup message, or now with --hub)."""
    from medspace.ledger import EntryType
    from medspace.lookup.entries import NodeLedger
    from medspace.lookup.errors import ReviewError
    from medspace.lookup.review import LookupLog
    from medspace.node import open_node

    try:
        with open_node(node) as opened:
            log = LookupLog(opened.directory)
            try:
                if mark is not None:
                    if justified is None:
                        raise ReviewError("say --justified or --unjustified with --mark")
                    verdict = "justified" if justified else "unjustified"
                    now = datetime.now(UTC)
                    log.mark(mark, verdict, note, now)
                    body = NodeLedger(opened.name, opened.identity_private_key()).sign(
                        EntryType.REVIEW, now, request=mark, decision=verdict
                    )
                    log.queue([body])
                    if hub is not None:
                        _flush(log, hub)
                    console.print(f"marked {mark} {verdict}; review entry signed by {opened.name}")
                _print_review(log)
            finally:
                log.close()
    except MedSpaceError as error:
        fail(error)


def _flush(log: object, hub: str) -> None:
    from medspace.hub.client import HubClient, load_session
    from medspace.lookup.entries import b64
    from medspace.lookup.review import LookupLog

    assert isinstance(log, LookupLog)
    queued = log.outbox()
    if not queued:
        return
    with HubClient(hub, load_session().token) as client:
        client.post("/lookup/entries", {"entries": b64([b for _, b in queued])})
    log.delivered([i for i, _ in queued])


def _print_review(log: object) -> None:
    from medspace.lookup.review import LookupLog

    assert isinstance(log, LookupLog)
    table = Table(
        Column("request", min_width=36, no_wrap=True),
        "time",
        "role",
        "clinician",
        "from",
        "status",
        "verdict",
        title="break-glass events",
    )
    for e in log.events(break_glass_only=True):
        table.add_row(
            e.request,
            e.time[:19],
            e.role,
            e.clinician,
            e.requester,
            e.status,
            e.verdict or "[yellow]to review[/]",
        )
    console.print(table)
    alerts = Table("time", "alert", "request", "count", title="alerts")
    for a in log.alerts():
        alerts.add_row(a.time[:19], a.kind, a.request, str(a.count))
    console.print(alerts)


@app.command("flag")
def flag(
    node: NodeDir,
    patient_id: Annotated[str, typer.Argument(help="The patient's id in this node's store.")],
    vip: Annotated[bool, typer.Option("--vip", help="A VIP.")] = False,
    staff: Annotated[bool, typer.Option("--staff", help="A member of staff.")] = False,
) -> None:
    """Flag a patient as VIP or staff: every lookup that matches them raises an alert."""
    from medspace.lookup.errors import ReviewError
    from medspace.lookup.review import LookupLog
    from medspace.node import open_node

    try:
        if vip == staff:
            raise ReviewError("give exactly one of --vip or --staff")
        with open_node(node) as opened:
            opened.store.patient_identity(patient_id)  # refuses an unknown patient
            log = LookupLog(opened.directory)
            try:
                log.set_flag(opened.store.pseudonym(patient_id), "vip" if vip else "staff")
            finally:
                log.close()
    except MedSpaceError as error:
        fail(error)
    console.print(f"flagged ({'vip' if vip else 'staff'}); lookups matching them raise alerts")


@app.command("serve-api")
def serve_api(
    node: NodeDir,
    hub: Annotated[str, typer.Option("--hub", help="The hub URL.")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8600,
) -> None:
    """Serve the node's lookup API (POST /lookup, GET /lookup/review) for the console."""
    import uvicorn

    from medspace.lookup.api import create_api

    try:
        api = create_api(node, hub)
    except MedSpaceError as error:
        fail(error)
    uvicorn.run(api, host=host, port=port, log_level="warning")
