"""The HTML page of a query report: one self-contained file a clinician can read.

Inline CSS, inline SVG charts (`charts.py`), no script, no external resource: it opens
offline and cannot phone home. Every value from the spec, the result or the nodes is
escaped with `html.escape` (labels come from researchers' specs and may hold markup).
"""

from __future__ import annotations

from html import escape

from medspace.analytics.budget import epsilon_text
from medspace.analytics.charts import Bar, bar_chart
from medspace.analytics.report import (
    STATUS_WORDS,
    Report,
    chart_column,
    column_words,
    format_number,
    format_p,
    hidden_because,
    interval_columns,
    label_columns,
    value_columns,
)
from medspace.analytics.result import StatisticResult

MAX_BARS = 120
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:60rem;
color:#1b1f24;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2rem;
border-bottom:1px solid #d0d7de}h3{font-size:1.05rem;margin-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{border:1px solid #d0d7de;
padding:.25rem .6rem;text-align:right}th{background:#f3f5f7}td.label,th.label{text-align:left}
.banner{padding:.6rem 1rem;border-radius:6px;margin:1rem 0;font-weight:600}
.partial{background:#fff4d6;border:1px solid #e3b341}.complete{background:#e6f4ea;
border:1px solid #57ab5a}.hidden-cell{color:#8c959f;font-style:italic}
.meta{color:#57606a;font-size:.9rem}.status-contributed{color:#1a7f37}
.status-missing,.status-rejected,.status-refused,.status-denied{color:#9a6700}
svg.chart text{font-size:12px;fill:#1b1f24}svg.chart .bar{fill:#4c78a8}
svg.chart .hidden{fill:none;stroke:#8c959f;stroke-dasharray:3 2}
svg.chart .axis{stroke:#57606a}svg.chart .whisker{stroke:#1b1f24;stroke-width:1.5}
"""


def render_html(report: Report) -> str:
    """The whole HTML document for `report`."""
    result = report.result
    title = result.title or report.project_title or "Federated query"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">Project <strong>{escape(report.project_id)}</strong>'
        + (f" ({escape(report.project_title)})" if report.project_title else "")
        + f" · generated {escape(report.generated_at.strftime('%Y-%m-%d %H:%M:%S UTC'))}"
        + f" · spec digest <code>{escape(result.spec_digest[:16])}</code></p>",
        _banner(report),
        "<h2>What was asked</h2><ul>",
        *(f"<li>{escape(line)}</li>" for line in report.question),
        "</ul>",
        "<h2>Hospitals</h2>",
        _nodes(report),
        "<h2>Results</h2>",
        f"<p>Cells counting fewer than {result.min_cell_size} patients are hidden and shown "
        f"as “&lt;{result.min_cell_size}”, with the reason; so are cells that would let a "
        "hidden one be worked out from the totals.</p>",
        _noise_note(report),
        *(_statistic(stat) for stat in result.statistics),
        "<h2>Privacy</h2>",
        _privacy(report),
        "<h2>Ledger</h2>",
        _ledger(report),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _noise_note(report: Report) -> str:
    if report.dp is None:
        return ""
    return (
        "<p><strong>These figures include random noise</strong> added for differential "
        "privacy (see Privacy below for how much): small differences between them are not "
        "meaningful.</p>"
    )


def _banner(report: Report) -> str:
    if report.partial:
        missing = [
            n.node for n in report.nodes if n.status not in ("contributed", "denied", "refused")
        ]
        names = ", ".join(missing) or "some hospitals"
        return (
            '<p class="banner partial">Partial result: '
            f"{escape(names)} did not contribute, so these figures cover only "
            f"{len(report.contributed)} hospital(s).</p>"
        )
    return (
        f'<p class="banner complete">Complete result from {len(report.contributed)} '
        "hospital(s).</p>"
    )


def _nodes(report: Report) -> str:
    rows = [
        '<table><tr><th class="label">Hospital node</th><th class="label">Outcome</th>'
        '<th class="label">Reason</th></tr>'
    ]
    for node in report.nodes:
        rows.append(
            f'<tr><td class="label">{escape(node.node)}</td>'
            f'<td class="label status-{escape(node.status)}">'
            f"{escape(STATUS_WORDS[node.status])}</td>"
            f'<td class="label">{escape(node.reason or "")}</td></tr>'
        )
    rows.append("</table>")
    return "".join(rows)


def _statistic(stat: StatisticResult) -> str:
    heading = escape(stat.label or stat.id)
    parts = [
        f'<section id="stat-{escape(stat.id)}"><h3>{heading} '
        f'<span class="meta">({escape(stat.kind)}, id {escape(stat.id)})</span></h3>'
    ]
    if stat.coefficients:
        parts.append(_coefficients(stat))
    elif stat.rows:
        parts.append(_table(stat))
        legend = hidden_because(stat)
        if legend:
            items = "".join(f"<li>{escape(line)}</li>" for line in legend)
            parts.append(f'<ul class="meta">{items}</ul>')
        parts.append(_chart(stat))
    for node, reason in sorted(stat.refused.items()):
        parts.append(f"<p>{escape(node)} refused this statistic: {escape(reason)}</p>")
    for note in stat.notes:
        parts.append(f'<p class="meta">{escape(note)}</p>')
    parts.append("</section>")
    return "".join(parts)


def _table(stat: StatisticResult) -> str:
    columns = value_columns(stat)
    headers = label_columns(stat)
    width = len(headers)
    head = "".join(f'<th class="label">{escape(h)}</th>' for h in headers)
    head += "".join(f"<th>{escape(column_words(c))}</th>" for c in columns)
    head += '<th class="label">hidden because</th>'
    rows = [f"<table><tr>{head}</tr>"]
    for row in stat.rows:
        labels = [*row.labels, *("" for _ in range(width - len(row.labels)))]
        cells = "".join(f'<td class="label">{escape(label)}</td>' for label in labels)
        for column in columns:
            text = row.display.get(column, format_number(row.values.get(column)))
            hidden = row.values.get(column) is None and text.startswith("<")
            css = ' class="hidden-cell"' if hidden else ""
            cells += f"<td{css}>{escape(text)}</td>"
        cells += f'<td class="label">{escape("; ".join(row.reasons))}</td>'
        rows.append(f"<tr>{cells}</tr>")
    rows.append("</table>")
    return "".join(rows)


def _chart(stat: StatisticResult) -> str:
    column = chart_column(stat)
    if column is None:
        return ""
    if len(stat.rows) > MAX_BARS:
        return f'<p class="meta">{len(stat.rows)} groups are too many to chart; see the table.</p>'
    interval = interval_columns(stat)
    bars = []
    for row in stat.rows:
        value = row.values.get(column)
        span = None
        if interval is not None:
            low, high = row.values.get(interval[0]), row.values.get(interval[1])
            if low is not None and high is not None:
                span = (low, high)
        display = row.display.get(column, format_number(value))
        bars.append(Bar(" · ".join(row.labels) or stat.id, value, display, span))
    title = f"{stat.label or stat.id}: {column_words(column)}"
    return (
        f"<figure>{bar_chart(bars, title=title)}<figcaption class='meta'>"
        f"{escape(title)}</figcaption></figure>"
    )


def _coefficients(stat: StatisticResult) -> str:
    rows = [
        '<table><tr><th class="label">term</th><th>estimate</th><th>std. error</th>'
        "<th>95 % interval</th><th>z</th><th>p</th></tr>"
    ]
    bars = []
    for c in stat.coefficients:
        low, high = c.estimate - 1.96 * c.std_error, c.estimate + 1.96 * c.std_error
        rows.append(
            f'<tr><td class="label">{escape(c.name)}</td><td>{format_number(c.estimate)}</td>'
            f"<td>{format_number(c.std_error)}</td>"
            f"<td>{format_number(low)} to {format_number(high)}</td>"
            f"<td>{format_number(c.z)}</td><td>{escape(format_p(c.p_value))}</td></tr>"
        )
        bars.append(Bar(c.name, c.estimate, format_number(c.estimate), (low, high)))
    rows.append("</table>")
    title = f"{stat.label or stat.id}: coefficients with 95 % intervals"
    chart = bar_chart(bars, title=title)
    return (
        "".join(rows) + f"<figure>{chart}<figcaption class='meta'>{escape(title)}"
        "</figcaption></figure>"
    )


def _privacy(report: Report) -> str:
    if report.dp is None:
        return (
            "<p>No differential privacy noise was added: this project uses minimum cell "
            "sizes, complementary suppression and the differencing audit only.</p>"
        )
    dp, release = report.dp, report.dp.release
    parts = [
        f"<p>Differential privacy: noise from {escape(release.library)} was added to the "
        "combined result before anything was derived from it. Neighbouring data differ by "
        f"{escape(release.neighbouring)}"
        + (
            f", with one person counted at up to {release.contributions} hospitals"
            if release.contributions > 1
            else ""
        )
        + ". The minimum cell size still applies: which cells are hidden is decided on "
        "exact counts at each hospital and is not itself noised.</p>",
        "<table>"
        f'<tr><td class="label">epsilon spent by this query</td>'
        f"<td>{escape(epsilon_text(release.epsilon))}</td></tr>"
        f'<tr><td class="label">project budget (total epsilon)</td>'
        f"<td>{escape(epsilon_text(dp.epsilon_total))}</td></tr>"
        f'<tr><td class="label">spent so far</td><td>{escape(epsilon_text(dp.epsilon_spent))}'
        "</td></tr>"
        f'<tr><td class="label">left</td><td>{escape(epsilon_text(dp.epsilon_left))}</td></tr>'
        "</table>",
        '<table><tr><th class="label">statistic</th><th class="label">part</th>'
        '<th class="label">mechanism</th><th>epsilon</th><th>sensitivity</th><th>scale</th>'
        "<th>± at 95 %</th></tr>",
    ]
    for group in release.groups:
        parts.append(
            f'<tr><td class="label">{escape(group.statistic)}</td>'
            f'<td class="label">{escape(group.part)}</td>'
            f'<td class="label">{escape(group.mechanism)}</td>'
            f"<td>{escape(format_number(float(group.epsilon)))}</td>"
            f"<td>{format_number(group.sensitivity)}</td><td>{format_number(group.scale)}</td>"
            f"<td>{format_number(group.accuracy_95)}</td></tr>"
        )
    parts.append("</table>")
    return "".join(parts)


def _ledger(report: Report) -> str:
    if not report.ledger_entries:
        return "<p>No ledger entries were recorded for this result.</p>"
    ids = ", ".join(str(i) for i in report.ledger_entries)
    return (
        f"<p>Ledger entries: <code>{escape(ids)}</code>. Check any of them with "
        "<code>medspace audit prove ENTRY_ID</code>.</p>"
    )
