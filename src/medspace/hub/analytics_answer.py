"""The hub's answer to a federated query, read on the researcher's side.

`POST /projects/{id}/query` answers JSON (see `medspace.hub.analytics`): a status
(completed, partial, refused), one row per node, the combined result, the DP release and
budget, and the ledger entry ids. This module turns that answer into the report values
of `medspace.analytics.report` (HTML + JSON twin, Rich tables), so the CLI, the demo and
tests print and write the same thing. It needs no server-side code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from medspace.errors import UsageError

# Node row status at the hub -> the report's words for it.
_OUTCOMES = {
    "ok": "contributed",
    "missing": "missing",
    "rejected": "rejected",
    "refused": "refused",
    "denied": "denied",
    "withdrawn": "denied",
    "not-approved": "denied",
    "error": "refused",
}


def node_outcomes(answer: dict[str, Any]) -> list[Any]:
    """Each node's `NodeOutcome` for the report."""
    from medspace.analytics.report import NodeOutcome

    outcomes = []
    for row in answer.get("nodes", []):
        status = _OUTCOMES.get(str(row.get("status")), "refused")
        reason = row.get("reason")
        if row.get("status") == "error" and reason:
            reason = f"error at the node: {reason}"
        outcomes.append(
            NodeOutcome.model_validate({"node": row["node"], "status": status, "reason": reason})
        )
    return outcomes


def answer_tables(answer: dict[str, Any]) -> list[Table]:
    """Rich tables: the nodes, then one per statistic (none for a refused query)."""
    from medspace.analytics import QueryResult
    from medspace.analytics.report import render_table

    nodes = Table("node", "status", "reason", title="hospitals", title_justify="left")
    for outcome in node_outcomes(answer):
        nodes.add_row(outcome.node, outcome.status, outcome.reason or "")
    tables = [nodes]
    if answer.get("result") is not None:
        tables += render_table(QueryResult.model_validate(answer["result"]))
    return tables


def write_answer_report(answer: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write the HTML report and its JSON twin for a completed or partial answer."""
    from medspace.analytics import QueryResult, QuerySpec
    from medspace.analytics.report import PrivacyReport, write_report

    if answer.get("result") is None:
        raise UsageError(
            "the query was refused, so there is no result to report; see the reason printed"
        )
    dp = answer.get("dp")
    return write_report(
        QueryResult.model_validate(answer["result"]),
        out_dir,
        spec=QuerySpec.parse(answer["spec"]),
        project_id=str(answer["project"]),
        project_title=answer.get("project_title"),
        nodes=node_outcomes(answer),
        dp=None if dp is None else PrivacyReport.model_validate(dp),
        ledger_entries=[int(i) for i in answer.get("ledger_entries", [])],
        partial=bool(answer.get("partial")),
    )
