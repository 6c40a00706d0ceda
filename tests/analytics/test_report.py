"""The query report: HTML a clinician can read, with every key fact, escaped, offline; and
its JSON twin, which says the same and parses back."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlalchemy as sa
from rich.console import Console

from medspace.analytics import QueryResult, QuerySpec
from medspace.analytics.budget import Budget
from medspace.analytics.charts import Bar, bar_chart
from medspace.analytics.dp import COUNT, NoiseGroup, privatize
from medspace.analytics.report import (
    NodeOutcome,
    PrivacyReport,
    build_report,
    read_report,
    render_privacy,
    render_table,
    write_report,
)
from medspace.analytics.result import (
    Coefficient,
    ResultRow,
    StatisticResult,
    SuppressedCell,
)
from medspace.errors import UsageError

EVIL = "<script>alert(1)</script>"
WHEN = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _spec() -> QuerySpec:
    return QuerySpec.parse(
        {
            "title": f"Response {EVIL}",
            "cohort": {
                "filters": [
                    {"domain": "condition", "system": "ICD-10", "code": "C22*"},
                    {"domain": "drug", "system": "ATC", "code": "L01EX02"},
                ]
            },
            "variables": {
                "sex": {"kind": "sex"},
                "band": {
                    "kind": "age_band",
                    "bands": [
                        {"label": "<60", "min": 0, "max": 59},
                        {"label": "60+", "min": 60, "max": 200},
                    ],
                },
                "dm": {"kind": "has", "domain": "condition", "system": "ICD-10", "code": "E11.9"},
                "age": {"kind": "age", "centre": 60, "scale": 10},
            },
            "statistics": [
                {"id": "patients", "kind": "count", "label": f"Patients {EVIL}", "by": ["sex"]},
                {"id": "dm_rate", "kind": "proportion", "variable": "dm", "by": ["band"]},
                {"id": "fit", "kind": "logistic", "outcome": "dm", "covariates": ["age"]},
            ],
        }
    )


def _result() -> QueryResult:
    return QueryResult(
        spec_digest="ab" * 32,
        title=f"Response {EVIL}",
        min_cell_size=5,
        nodes=("h1", "h2"),
        statistics=(
            StatisticResult(
                id="patients",
                kind="count",
                label=f"Patients {EVIL}",
                columns=("sex",),
                rows=(
                    ResultRow(labels=("female",), values={"n": 41.0}, display={"n": "41"}),
                    ResultRow(
                        labels=("male",),
                        values={"n": None},
                        display={"n": "<5"},
                        suppressed=True,
                        reasons=("h2: below-min-cell",),
                    ),
                ),
            ),
            StatisticResult(
                id="dm_rate",
                kind="proportion",
                columns=("band",),
                rows=(
                    ResultRow(
                        labels=("<60",),
                        values={"n": 20.0, "proportion": 0.25, "ci_low": 0.11, "ci_high": 0.47},
                        display={"n": "20", "proportion": "25.0 %"},
                    ),
                    ResultRow(
                        labels=("60+",),
                        values={"n": 25.0, "proportion": 0.4, "ci_low": 0.23, "ci_high": 0.59},
                        display={"n": "25", "proportion": "40.0 %"},
                    ),
                ),
                notes=("Wilson score interval at 95 %.",),
            ),
            StatisticResult(
                id="fit",
                kind="logistic",
                coefficients=(
                    Coefficient(
                        name="intercept", estimate=-1.2, std_error=0.3, z=-4.0, p_value=6e-5
                    ),
                    Coefficient(name="age", estimate=0.45, std_error=0.2, z=2.25, p_value=0.0244),
                ),
            ),
        ),
        suppressed=(
            SuppressedCell(
                statistic="patients", labels=("male",), part="n", reasons=("h2: below-min-cell",)
            ),
        ),
    )


NODES = [
    NodeOutcome(node="h1", status="contributed"),
    NodeOutcome(node="h2", status="contributed"),
    NodeOutcome(node="h3", status="missing", reason="no answer before the deadline"),
    NodeOutcome(node="h4", status="denied", reason="standing policy does not allow logistic"),
]


def _privacy(engine: sa.Engine) -> PrivacyReport:
    _, release = privatize([41.0], [NoiseGroup("patients", "n", (0,), COUNT)], Decimal("0.5"))
    spend = Budget(engine).spend("hcc-study", "q-1", Decimal("0.5"), Decimal("2"))
    return PrivacyReport.of(release, spend)


class _Page(HTMLParser):
    """Collects text and tags; checks that non-void elements are closed in order."""

    VOID = frozenset({"meta", "br", "img", "hr", "input", "link", "line", "rect"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    assert page.stack == []
    return page


@pytest.fixture
def written(tmp_path: Path) -> tuple[Path, Path]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    return write_report(
        _result(),
        tmp_path / "out",
        spec=_spec(),
        project_id="hcc-study",
        project_title="HCC outcomes",
        nodes=NODES,
        dp=_privacy(engine),
        ledger_entries=[17, 18, 21],
        generated_at=WHEN,
    )


def test_the_html_report_states_every_key_fact(written: tuple[Path, Path]) -> None:
    html_path, _ = written
    text = " ".join(_parse(html_path.read_text(encoding="utf-8")).text)
    for fact in [
        "hcc-study",  # the project
        "2026-03-01 09:30:00 UTC",  # when
        "ICD-10 C22 (or any code under it)",  # what was asked, in words
        "ATC L01EX02",
        "did not answer in time",  # h3 missing, with its reason
        "no answer before the deadline",
        "standing policy does not allow logistic",  # h4's policy denial
        "Partial result",
        "<5",  # a suppressed cell as <k
        "h2: below-min-cell",  # and why
        "below-min-cell: counts fewer patients than the minimum cell size",  # in words
        "25.0 %",
        "epsilon spent by this query",
        "17, 18, 21",  # ledger ids
        "medspace audit prove",
        "intercept",  # regression coefficients
    ]:
        assert fact in text, fact
    # DP parameters and the budget left: 0.5 spent of 2, 1.5 left.
    assert "1.5" in text and "discrete Laplace" in text
    assert "These figures include random noise" in text


def test_labels_from_the_spec_are_escaped(written: tuple[Path, Path]) -> None:
    html = written[0].read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    page = _parse(html)
    assert all(tag != "script" for tag, _ in page.tags)
    assert any(EVIL in chunk for chunk in page.text)  # shown as text, not run


def test_the_html_report_is_self_contained(written: tuple[Path, Path]) -> None:
    page = _parse(written[0].read_text(encoding="utf-8"))
    for tag, attrs in page.tags:
        assert "src" not in attrs and "href" not in attrs, tag
        assert tag not in ("script", "link", "iframe", "img", "object")
    charts = [tag for tag, _ in page.tags if tag == "svg"]
    assert len(charts) == 3  # counts, proportions, coefficients


def test_the_json_twin_round_trips_and_says_the_same(written: tuple[Path, Path]) -> None:
    html_path, json_path = written
    report = read_report(json_path)
    assert report.result == _result()
    assert report.partial is True
    assert report.ledger_entries == (17, 18, 21)
    assert report.contributed == ("h1", "h2")
    assert report.dp is not None and report.dp.epsilon_left == Decimal("1.5")
    assert QuerySpec.parse(report.spec) == _spec()
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["format"] == "medspace-query-report-v1"
    assert data["dp"]["epsilon_left"] == "1.5"  # decimals as strings, exact
    assert data["nodes"][2] == {
        "node": "h3",
        "status": "missing",
        "reason": "no answer before the deadline",
    }
    from medspace.analytics.report_html import render_html

    assert render_html(report) == html_path.read_text(encoding="utf-8")


def test_a_result_from_every_node_is_complete_and_without_dp_says_so(tmp_path: Path) -> None:
    report = build_report(
        _result(),
        spec=_spec(),
        project_id="hcc-study",
        nodes=[*NODES[:2], NODES[3]],  # a policy denial does not make a result partial
        generated_at=WHEN,
    )
    assert report.partial is False
    from medspace.analytics.report_html import render_html

    text = " ".join(_parse(render_html(report)).text)
    assert "Complete result from 2 hospital(s)" in text
    assert "No differential privacy noise was added" in text
    assert "No ledger entries" in text


def test_a_file_that_is_not_a_report_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"hello": 1}', encoding="utf-8")
    with pytest.raises(UsageError, match="not a MedSpace query report"):
        read_report(path)


def test_the_terminal_tables_show_cells_and_coefficients() -> None:
    console = Console(file=io.StringIO(), width=160, color_system=None)
    tables = render_table(_result())
    assert len(tables) == 3
    headers = [str(c.header) for c in tables[1].columns]
    assert headers == [
        "band",
        "patients",
        "share",
        "interval from",
        "interval to",
        "hidden because",
    ]
    for table in tables:
        console.print(table)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "<5" in out and "below-min-cell" in out
    assert "counts fewer patients than the minimum cell size" in " ".join(out.split())
    assert "earlier-answers:" not in out  # only the reasons the rows give are explained
    assert "25.0 %" in out
    assert "intercept" in out and "< 0.001" in out


def test_the_terminal_shows_the_privacy_parameters_and_budget(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(render_privacy(_privacy(engine)))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "discrete Laplace" in out
    assert "epsilon spent 0.5; project budget 2, left 1.5" in out


def test_a_statistic_with_very_many_groups_is_tabled_not_charted() -> None:
    from medspace.analytics.report_html import MAX_BARS, _statistic

    rows = tuple(
        ResultRow(labels=(f"bin {i}",), values={"n": float(i)}, display={"n": str(i)})
        for i in range(MAX_BARS + 1)
    )
    html = _statistic(StatisticResult(id="h", kind="histogram", rows=rows))
    assert "<svg" not in html and "too many to chart" in html
    assert f"bin {MAX_BARS}" in html


def test_charts_draw_negative_and_hidden_values_and_escape_text() -> None:
    svg = bar_chart(
        [Bar("a & b", -2.0, "-2", (-3.0, -1.0)), Bar(EVIL, None, "<5"), Bar("c", 4.0, "4")],
        title=f"t {EVIL}",
    )
    assert "<script" not in svg
    assert "&lt;5" in svg and "a &amp; b" in svg
    assert 'class="hidden"' in svg and 'class="whisker"' in svg
    _parse(svg)
