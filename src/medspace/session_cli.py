"""`medspace query session open | ask | close`: an analysis session from the command line.

A session selects its cohort once at every node (`open`, signed like `query run`); each
`ask` then answers further statistics over that cohort in well under a second, and
`close` makes the nodes drop it (else they do after 10 minutes unused). See
docs/analytics.md "Analysis sessions" for what a session may ask and what is checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from medspace.errors import MedSpaceError, UsageError
from medspace.hub.cli import fail
from medspace.network_cli import console, hub_client, print_answer, read_json_file

session_app = typer.Typer(
    help="Analysis sessions: select a cohort once, then ask statistic after statistic.",
    no_args_is_help=True,
)

ProjectOpt = Annotated[str, typer.Option("--project", help="The project id.")]
SessionOpt = Annotated[str, typer.Option("--session", help="The id `session open` printed.")]
ReportOpt = Annotated[
    Path | None, typer.Option("--report", help="Write the HTML + JSON report here.")
]


@session_app.command("open")
def session_open(
    spec_file: Annotated[Path, typer.Argument(help="The query spec (JSON) to open with.")],
    project: ProjectOpt,
    report: ReportOpt = None,
) -> None:
    """Open a session with a query spec: prints its statistics and the session id. Later
    statistics may use the kinds and variables this spec names."""
    try:
        spec = read_json_file(spec_file)
        with hub_client() as client:
            answer = client.open_session(project, spec)
    except MedSpaceError as error:
        fail(error)
    print_answer(answer, report)
    session = answer["session"]
    console.print(
        f"session: {session['id']} (closes after {session['idle_timeout_s']:g} s unused)",
        highlight=False,
    )


@session_app.command("ask")
def session_ask(
    statistics_file: Annotated[
        Path,
        typer.Argument(help='Statistics (JSON): a list, {"statistics": [...]} or a spec.'),
    ],
    project: ProjectOpt,
    session: SessionOpt,
    report: ReportOpt = None,
) -> None:
    """Ask further statistics in your open session (same cohort and variables)."""
    try:
        statistics = _statistics(read_json_file(statistics_file), statistics_file)
        with hub_client() as client:
            answer = client.ask_session(project, session, statistics)
    except MedSpaceError as error:
        fail(error)
    print_answer(answer, report)


@session_app.command("close")
def session_close(project: ProjectOpt, session: SessionOpt) -> None:
    """Close your session: every node drops its cohort."""
    try:
        with hub_client() as client:
            client.close_session(project, session)
    except MedSpaceError as error:
        fail(error)
    console.print(f"session {session} closed", highlight=False)


def _statistics(document: Any, path: Path) -> list[Any]:
    """The statistics list out of a list, {"statistics": [...]}, or a whole spec."""
    if isinstance(document, dict):
        document = document.get("statistics")
    if not isinstance(document, list):
        raise UsageError(
            f'{path} holds no statistics: give a JSON list, {{"statistics": [...]}} or a query spec'
        )
    return document


__all__ = ["session_app"]
