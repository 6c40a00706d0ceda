"""DP release feeding the hub's combine and the report, as the hub does it: the noisy
vector always combines into a well-formed result, whatever the noise."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from medspace.analytics import QuerySpec, layout
from medspace.analytics.budget import Budget
from medspace.analytics.combine import combine
from medspace.analytics.dp import release
from medspace.analytics.report import NodeOutcome, PrivacyReport, read_report, write_report

SPEC = QuerySpec.parse(
    {
        "title": "Diabetes among liver cancer patients",
        "cohort": {
            "filters": [{"domain": "condition", "system": "ICD-10", "code": "C22*"}],
            "age": {"min": 18, "max": 100},
        },
        "variables": {
            "sex": {"kind": "sex"},
            "dm": {"kind": "has", "domain": "condition", "system": "ICD-10", "code": "E11*"},
            "age": {"kind": "age"},
        },
        "statistics": [
            {"id": "patients", "kind": "count", "by": ["sex"]},
            {"id": "dm_rate", "kind": "proportion", "variable": "dm", "by": ["sex"]},
            {"id": "age", "kind": "variance", "variable": "age"},
            {"id": "age_q", "kind": "quantiles", "variable": "age", "edges": [20, 40, 60, 80]},
            {"id": "dm_by_sex", "kind": "table", "variables": ["sex", "dm"]},
        ],
    }
)
CELLS = layout(SPEC)


def _exact_sum() -> list[float]:
    """A consistent summed vector: 300 women and 200 men, 30 % with diabetes, ages 30-80."""
    where = {(c.statistic, c.labels, c.part): i for i, c in enumerate(CELLS.cells)}
    total = [0.0] * len(CELLS)

    def put(statistic: str, labels: tuple[str, ...], part: str, value: float) -> None:
        total[where[(statistic, labels, part)]] = value

    for sex, n in (("female", 300.0), ("male", 200.0)):
        put("patients", (sex,), "n", n)
        put("dm_rate", (sex,), "yes", 0.3 * n)
        put("dm_rate", (sex,), "no", 0.7 * n)
        put("dm_rate", (sex,), "n", n)
        put("dm_by_sex", (sex, "1"), "cell", 0.3 * n)
        put("dm_by_sex", (sex, "0"), "cell", 0.7 * n)
        put("dm_by_sex", (sex, "all"), "margin", n)
    put("dm_by_sex", ("all", "1"), "margin", 150.0)
    put("dm_by_sex", ("all", "0"), "margin", 350.0)
    put("dm_by_sex", ("all", "all"), "n", 500.0)
    put("age", (), "n", 500.0)
    put("age", (), "sum", 500.0 * 60)
    put("age", (), "sumsq", 500.0 * (60 * 60 + 100))
    for label, n in (("[20, 40)", 50.0), ("[40, 60)", 200.0), ("[60, 80)", 250.0)):
        put("age_q", (label,), "bin", n)
    put("age_q", ("total",), "n", 500.0)
    return total


def test_noisy_sums_always_combine_into_a_valid_result() -> None:
    flags: dict[str, list[str | None]] = {"h1": [None] * len(CELLS), "h2": [None] * len(CELLS)}
    exact = _exact_sum()
    # A tiny epsilon makes the noise far larger than the counts: shares must stay in
    # [0, 1], counts at or above 0, and combine must never fail.
    for epsilon in ("0.01", "0.5", "5"):
        for _ in range(30):
            noisy, _info = release(SPEC, CELLS, exact, Decimal(epsilon))
            result = combine(SPEC, CELLS, noisy, flags, 5)
            for row in result.statistic("dm_rate").rows:
                share = row.values.get("proportion")
                assert share is None or 0.0 <= share <= 1.0
            for row in result.statistic("patients").rows:
                n = row.values["n"]
                assert n is None or n >= 0


def test_a_generous_epsilon_gives_answers_close_to_the_truth() -> None:
    flags: dict[str, list[str | None]] = {"h1": [None] * len(CELLS), "h2": [None] * len(CELLS)}
    noisy, info = release(SPEC, CELLS, _exact_sum(), Decimal("50"))
    result = combine(SPEC, CELLS, noisy, flags, 5)
    # Each count's 95 % accuracy is a few patients here; 40 is far outside any real draw.
    women = result.statistic("patients").rows[0].values["n"]
    assert women is not None and abs(women - 300) < 40
    share = result.statistic("dm_rate").rows[0].values["proportion"]
    assert share is not None and abs(share - 0.3) < 0.1
    mean = result.statistic("age").rows[0].values["mean"]
    assert mean is not None and abs(mean - 60) < 5
    assert {g.statistic for g in info.groups} == {s.id for s in SPEC.statistics}


def test_a_dp_result_is_reported_with_its_budget(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    spend = Budget(engine).spend("dm-study", "q-7", Decimal("1"), Decimal("3"))
    flags: dict[str, list[str | None]] = {"h1": [None] * len(CELLS), "h2": [None] * len(CELLS)}
    noisy, info = release(SPEC, CELLS, _exact_sum(), spend.epsilon)
    result = combine(SPEC, CELLS, noisy, flags, 5)
    html, twin = write_report(
        result,
        tmp_path / "report",
        spec=SPEC,
        project_id="dm-study",
        nodes=[
            NodeOutcome(node="h1", status="contributed"),
            NodeOutcome(node="h2", status="contributed"),
        ],
        dp=PrivacyReport.of(info, spend),
        ledger_entries=[3, 4],
    )
    report = read_report(twin)
    assert report.result == result
    assert report.dp is not None and report.dp.epsilon_left == Decimal("2")
    text = html.read_text(encoding="utf-8")
    assert "Diabetes among liver cancer patients" in text
    assert "discrete Laplace" in text and "<svg" in text
