"""The report of a federated query: HTML for people, a JSON twin for machines, Rich tables.

`write_report` gathers every fact a reader needs to trust or question a result: what was
asked (in plain words), which hospitals contributed, were missing or refused and why,
every statistic with its cells (suppressed ones shown as "<k" with the reason), the
differential privacy parameters and the budget left, whether the result is partial, the
ledger entry ids to look up with `medspace audit prove`, and when it was generated. Both
files come from one `Report` value, so they always say the same; `read_report` parses
the JSON twin back into it. Nothing here is patient data: results are aggregates that
passed disclosure control.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from rich.table import Table

from medspace.analytics.budget import Spend, epsilon_text
from medspace.analytics.dp import DPRelease
from medspace.analytics.report_question import describe_question
from medspace.analytics.result import QueryResult, StatisticResult
from medspace.analytics.spec import QuerySpec
from medspace.errors import UsageError

REPORT_FORMAT: Literal["medspace-query-report-v1"] = "medspace-query-report-v1"
NodeStatus = Literal["contributed", "missing", "refused", "denied", "rejected"]
STATUS_WORDS: dict[str, str] = {
    "contributed": "contributed",
    "missing": "did not answer in time",
    "refused": "refused (disclosure rules)",
    "denied": "denied by its policy",
    "rejected": "answer rejected by the hub",
}
COLUMN_WORDS = {
    "n": "patients",
    "yes": "with it",
    "proportion": "share",
    "ci_low": "interval from",
    "ci_high": "interval to",
    "sd": "SD",
    "error": "± error",
    "lower": "lower bound",
    "upper": "upper bound",
}
HIDDEN_BECAUSE = {
    "below-min-cell": "counts fewer patients than the minimum cell size",
    "complementary": (
        "hidden as well, so that a hidden cell (of this answer, or of an earlier answer "
        "about the same patients) cannot be worked out from the cells shown"
    ),
    "follows-n": "a sum, mean or spread whose number of patients is hidden",
    "earlier-answers": (
        "withheld: with what this hospital released about the same patients before, it "
        "would give a hidden cell away"
    ),
    "bounds-below-min-cell": "fewer patients than the minimum cell size have a value",
    "zero-in-small-group": (
        "a 0 inside a group of fewer patients than the minimum cell size: shown, it "
        "would say what the few patients of that group do not have"
    ),
    "empty-by-zero": (
        "withheld: a 0 in this answer would seem to say that a group holding patients is "
        "empty (patients without a value of a variable are in none of its categories); "
        "ask the statistics without the one that shows only zeros"
    ),
}
"""What each disclosure-control reason code in "hidden because" means, for people."""
_CHART_COLUMNS = {
    "count": ("n", "count"),
    "histogram": ("n", "count"),
    "table": ("n", "count"),
    "proportion": ("proportion", "p", "share"),
    "mean": ("mean",),
    "variance": ("mean", "sd"),
    "sum": ("sum",),
}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NodeOutcome(_Model):
    """What one hospital's node did for this query, and why when it did not contribute."""

    node: str
    status: NodeStatus
    reason: str | None = None


class PrivacyReport(_Model):
    """DP parameters of the result and the project's budget right after it."""

    release: DPRelease
    epsilon_total: Decimal
    epsilon_spent: Decimal
    epsilon_left: Decimal

    @classmethod
    def of(cls, release: DPRelease, spend: Spend) -> PrivacyReport:
        """From the noise added (`dp.release`) and the budget charge (`Budget.spend`)."""
        return cls(
            release=release,
            epsilon_total=spend.total,
            epsilon_spent=spend.spent,
            epsilon_left=spend.left,
        )


class Report(_Model):
    """Everything the HTML and JSON reports say; the JSON twin is this model's JSON."""

    format: Literal["medspace-query-report-v1"] = REPORT_FORMAT
    generated_at: datetime
    project_id: str
    project_title: str | None = None
    question: tuple[str, ...]
    spec: dict[str, Any]
    result: QueryResult
    nodes: tuple[NodeOutcome, ...]
    partial: bool
    dp: PrivacyReport | None = None
    ledger_entries: tuple[int, ...] = ()

    @property
    def contributed(self) -> tuple[str, ...]:
        """Nodes whose data are in the result."""
        return tuple(n.node for n in self.nodes if n.status == "contributed")


def build_report(
    result: QueryResult,
    *,
    spec: QuerySpec,
    project_id: str,
    project_title: str | None = None,
    nodes: Sequence[NodeOutcome],
    dp: PrivacyReport | None = None,
    ledger_entries: Sequence[int] = (),
    partial: bool | None = None,
    generated_at: datetime | None = None,
) -> Report:
    """The report value. `partial` defaults to: some node was missing or rejected."""
    if partial is None:
        partial = any(n.status in ("missing", "rejected") for n in nodes)
    return Report(
        generated_at=(generated_at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0),
        project_id=project_id,
        project_title=project_title,
        question=tuple(describe_question(spec)),
        spec=json.loads(spec.to_json()),
        result=result,
        nodes=tuple(sorted(nodes, key=lambda n: n.node)),
        partial=partial,
        dp=dp,
        ledger_entries=tuple(ledger_entries),
    )


def write_report(
    result: QueryResult,
    out_dir: Path,
    *,
    spec: QuerySpec,
    project_id: str,
    project_title: str | None = None,
    nodes: Sequence[NodeOutcome],
    dp: PrivacyReport | None = None,
    ledger_entries: Sequence[int] = (),
    partial: bool | None = None,
    generated_at: datetime | None = None,
) -> tuple[Path, Path]:
    """Write `report.html` and `report.json` into `out_dir` (created if missing); return
    their paths. Files are written whole (temporary file, then rename)."""
    report = build_report(
        result,
        spec=spec,
        project_id=project_id,
        project_title=project_title,
        nodes=nodes,
        dp=dp,
        ledger_entries=ledger_entries,
        partial=partial,
        generated_at=generated_at,
    )
    return save_report(report, out_dir)


def save_report(report: Report, out_dir: Path) -> tuple[Path, Path]:
    """Write a built report as HTML and JSON into `out_dir`; return (html, json) paths."""
    from medspace.analytics.report_html import render_html

    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out_dir / "report.html", out_dir / "report.json"
    _write_whole(json_path, report.model_dump_json(indent=2) + "\n")
    _write_whole(html_path, render_html(report))
    return html_path, json_path


def read_report(path: Path) -> Report:
    """Parse a JSON twin back; raises `UsageError` for a file that is not one."""
    try:
        return Report.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        raise UsageError(
            f"{path.name} is not a MedSpace query report ({type(exc).__name__}); "
            "give the report.json written by `medspace query run --report DIR`"
        ) from None


def render_table(result: QueryResult) -> list[Table]:
    """One Rich table per statistic (coefficients for a regression), for the terminal."""
    tables = []
    for stat in result.statistics:
        title = stat.label or stat.id
        table = Table(title=f"{title} [{stat.kind}]", title_justify="left", caption_justify="left")
        if stat.coefficients:
            for name in ("term", "estimate", "std. error", "z", "p"):
                table.add_column(name, justify="left" if name == "term" else "right")
            for c in stat.coefficients:
                table.add_row(
                    c.name,
                    format_number(c.estimate),
                    format_number(c.std_error),
                    format_number(c.z),
                    format_p(c.p_value),
                )
        else:
            headers = label_columns(stat)
            labels = len(headers)
            for header in headers:
                table.add_column(header)
            columns = value_columns(stat)
            for name in columns:
                table.add_column(column_words(name), justify="right")
            table.add_column("hidden because")
            for row in stat.rows:
                cells = [*row.labels, *("" for _ in range(labels - len(row.labels)))]
                cells += [row.display.get(c, format_number(row.values.get(c))) for c in columns]
                cells.append("; ".join(row.reasons))
                table.add_row(*cells)
        caption = [f"{line}." for line in hidden_because(stat)]
        caption += [f"{node} refused: {reason}." for node, reason in sorted(stat.refused.items())]
        caption += list(stat.notes)
        table.caption = "\n".join(caption) or None
        tables.append(table)
    return tables


def render_privacy(dp: PrivacyReport) -> Table:
    """The DP parameters and the budget left, as a Rich table for the terminal."""
    table = Table(title="differential privacy", title_justify="left")
    table.add_column("statistic")
    table.add_column("part")
    table.add_column("mechanism")
    table.add_column("epsilon", justify="right")
    table.add_column("± at 95 %", justify="right")
    for group in dp.release.groups:
        table.add_row(
            group.statistic,
            group.part,
            group.mechanism,
            format_number(float(group.epsilon)),
            format_number(group.accuracy_95),
        )
    table.caption = (
        f"epsilon spent {epsilon_text(dp.release.epsilon)}; project budget "
        f"{epsilon_text(dp.epsilon_total)}, left {epsilon_text(dp.epsilon_left)}"
    )
    return table


def value_columns(stat: StatisticResult) -> list[str]:
    """The statistic's value columns (e.g. n, mean, sd), in the order rows give them."""
    names: dict[str, None] = {}
    for row in stat.rows:
        names.update(dict.fromkeys([*row.values, *row.display]))
    return list(names)


def hidden_because(stat: StatisticResult) -> list[str]:
    """One line per reason code the statistic's rows give ("h1: complementary"), saying
    what it means; in the order the codes first appear."""
    codes: dict[str, None] = {}
    for row in stat.rows:
        for reason in row.reasons:
            code = reason.rpartition(": ")[2]
            if code in HIDDEN_BECAUSE:
                codes[code] = None
    return [f"{code}: {HIDDEN_BECAUSE[code]}" for code in codes]


def column_words(name: str) -> str:
    """A value column's header for people ("share" for proportion)."""
    return COLUMN_WORDS.get(name, name)


def label_columns(stat: StatisticResult) -> list[str]:
    """Headers of the label columns: the grouping variables' names when the result
    names them (`columns`), else "group"."""
    width = max((len(r.labels) for r in stat.rows), default=0)
    if len(stat.columns) == width:
        return list(stat.columns)
    return ["group" if width == 1 else f"group {i + 1}" for i in range(width)]


def chart_column(stat: StatisticResult) -> str | None:
    """The column a statistic's chart shows: the natural one for its kind, else the
    first column holding a number."""
    columns = value_columns(stat)
    for name in _CHART_COLUMNS.get(stat.kind, ()):
        if name in columns:
            return name
    for name in columns:
        if any(isinstance(r.values.get(name), int | float) for r in stat.rows):
            return name
    return None


def interval_columns(stat: StatisticResult) -> tuple[str, str] | None:
    """A (low, high) pair of interval columns (e.g. a Wilson CI), if the statistic has one."""
    columns = value_columns(stat)
    lows = [c for c in columns if "low" in c]
    for low in lows:
        for high in (low.replace("lower", "upper"), low.replace("low", "high")):
            if high != low and high in columns:
                return low, high
    return None


def format_number(value: float | None) -> str:
    """A number for people: integers plainly, others to 4 significant digits."""
    if value is None or not math.isfinite(value):
        return "–"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.4g}"


def format_p(value: float) -> str:
    """A p-value as journals print it."""
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _write_whole(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
