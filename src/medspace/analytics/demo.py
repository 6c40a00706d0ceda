"""`make demo`'s multi-centre study: two federated queries over every hospital's node.

`prepare(...)`, before the network starts: each node's standing policy is extended to
allow the study's computation kinds; the questions are built from the synthetic ground
truth (`ground_truth.json`: the planted sorafenib response by age band and sex, and the
myocardial-infarction risk model).

`run(...)`, while the network runs, as researcher alice:

1. project `hcc-response`: sorafenib response rate per age band x sex among C22.0
   patients on L01EX02, with secure aggregation. Printed next to the planted truth with
   the 95 % Wilson interval of each recovered rate; the stated tolerance is "the planted
   probability lies in the 95 % interval" (so about 1 cell in 20 may miss by chance),
   and every released number is also checked to equal the same statistic computed
   directly on the union of the node stores (exactly, up to float rounding); then an
   analysis session on the same project (`medspace.analytics.demo_session`): three
   further statistics from the nodes' memory, each checked equal to its one-shot query;
2. project `mi-risk`: the federated logistic regression of MI on age, sex, diabetes,
   hypertension and HbA1c, next to a pooled Newton-Raphson fit on the union of the
   node stores (computed here in the demo process, for comparison only; a real
   deployment has no such union). They must agree to 1e-6.

The HTML + JSON reports go under the network's work directory.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from medspace.analytics.demo_session import run_session
from medspace.errors import MedSpaceError
from medspace.hub.analytics_answer import answer_tables, write_answer_report
from medspace.hub.client import HubClient
from medspace.node import open_node
from medspace.node.standing import load_consent, load_node_policy, save_node_policy
from medspace.policy import Purpose

STUDY_KINDS = frozenset({"count", "proportion", "table", "logistic"})
TOLERANCE_FIT = 1e-6
# Each node suppresses its own cells below the minimum before anything leaves it, so a
# combined cell shows only where every hospital has at least this many patients in it.
MIN_CELL = 5


class StudyDemoError(MedSpaceError):
    """The study did not run or did not show what it should; the message says which."""


@dataclass(frozen=True)
class Study:
    """The two questions and the planted truth they are compared with."""

    hcc_spec: dict[str, Any]
    mi_spec: dict[str, Any]
    response_truth: dict[tuple[str, str], float]
    mi_truth: dict[str, float]


def _code(ref: dict[str, Any]) -> dict[str, str]:
    return {"system": ref["system"], "code": ref["code"]}


def _specs(signals: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    hcc = signals["sorafenib_response"]
    bands = [
        {"label": b["label"], "min": b["min_age"], "max": b["max_age"]} for b in hcc["age_bands"]
    ]
    hcc_spec = {
        "title": "Sorafenib response by age band and sex (liver cell carcinoma)",
        "reference_date": signals["age_reference_date"],
        "cohort": {
            "filters": [
                {"domain": "condition", **_code(hcc["condition"])},
                {"domain": "drug", **_code(hcc["drug"])},
                {"domain": "observation", **_code(hcc["observation"])},
            ]
        },
        "variables": {
            "age_band": {"kind": "age_band", "bands": bands},
            "sex": {"kind": "sex", "categories": ["female", "male"]},
            "response": {
                "kind": "observation_category",
                **_code(hcc["observation"]),
                "pick": "latest",
                "categories": [
                    {"label": "improved", "codes": [_code(hcc["responder_value"])]},
                    {
                        "label": "not improved",
                        "codes": [_code(v) for v in hcc["non_responder_values"]],
                    },
                ],
            },
            "responded": {"kind": "is", "of": "response", "category": "improved"},
        },
        "statistics": [
            {"id": "patients", "kind": "count", "label": "Treated patients with an assessment"},
            {
                "id": "response_rate",
                "kind": "proportion",
                "label": "Response rate (condition improved) by age band and sex",
                "variable": "responded",
                "by": ["age_band", "sex"],
            },
        ],
    }
    mi = signals["myocardial_infarction"]
    mi_spec = {
        "title": "Myocardial infarction: logistic model",
        "reference_date": signals["age_reference_date"],
        "cohort": {"filters": [{"domain": "measurement", "system": "LOINC", "code": "4548-4"}]},
        "variables": {
            "mi": {"kind": "has", "domain": "condition", **_code(mi["outcome_condition"])},
            "age": {"kind": "age", "centre": 60, "scale": 10},
            "sex": {"kind": "sex", "categories": ["female", "male"]},
            "male": {"kind": "is", "of": "sex", "category": "male"},
            "diabetes": {"kind": "has", "domain": "condition", "system": "ICD-10", "code": "E11.9"},
            "hypertension": {
                "kind": "has",
                "domain": "condition",
                "system": "ICD-10",
                "code": "I10",
            },
            "hba1c": {
                "kind": "measurement",
                "system": "LOINC",
                "code": "4548-4",
                "pick": "earliest",
                "centre": 6,
                "scale": 1,
            },
        },
        "statistics": [
            {
                "id": "mi_model",
                "kind": "logistic",
                "label": "logit P(MI) on age, male, diabetes, hypertension, HbA1c",
                "outcome": "mi",
                "covariates": ["age", "male", "diabetes", "hypertension", "hba1c"],
                "max_iterations": 25,
                "tolerance": 1e-10,
            }
        ],
    }
    return hcc_spec, mi_spec


def prepare(console: Console, nodes: dict[str, Path], hospitals_dir: Path) -> Study:
    """Allow the study's computations at every node (minimum cell floor 5, which a
    steward may set) and build the questions."""
    for name, directory in nodes.items():
        policy = load_node_policy(directory, name)
        save_node_policy(
            directory,
            policy.model_copy(
                update={
                    "allowed_purposes": frozenset({*policy.allowed_purposes, Purpose.HRESCH}),
                    "allowed_computations": frozenset({*policy.allowed_computations, *STUDY_KINDS}),
                    "min_cell_floor": MIN_CELL,
                }
            ),
        )
    console.print(
        f"  {', '.join(nodes)}: standing policies allow research computations "
        f"{', '.join(sorted(STUDY_KINDS))}; minimum cell {MIN_CELL}"
    )
    truth = json.loads((hospitals_dir / "ground_truth.json").read_text(encoding="utf-8"))
    signals = truth["signals"]
    hcc_spec, mi_spec = _specs(signals)
    response = {
        (p["age_band"], p["sex"]): float(p["p_response"])
        for p in signals["sorafenib_response"]["probability"]
    }
    coefficients = {
        k: float(v) for k, v in signals["myocardial_infarction"]["coefficients"].items()
    }
    return Study(hcc_spec, mi_spec, response, coefficients)


def _terms(project_id: str, title: str, spec: dict[str, Any], nodes: list[str]) -> dict[str, Any]:
    from medspace.analytics import QuerySpec

    parsed = QuerySpec.parse(spec)
    now = datetime.now(UTC)
    return {
        "id": project_id,
        "title": title,
        "purpose": "HRESCH",
        "description": title + " across every hospital, without moving records.",
        "cohort": spec["cohort"],
        "variables": list(parsed.data_fields()),
        "computations": list(parsed.computations()),
        "disclosure": {"min_cell_size": MIN_CELL},
        "nodes": nodes,
        "quorum": 3,
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "expires_at": (now + timedelta(days=90)).isoformat(),
    }


def _approved_project(
    client: Callable[[str], HubClient], project: dict[str, Any], nodes: list[str]
) -> HubClient:
    alice = client("alice")
    alice.post("/projects", project)
    for name in nodes:
        with client(f"steward-{name}") as steward:
            steward.post(f"/projects/{project['id']}/approve", {"reason": "study approved"})
    return alice


def run(
    console: Console,
    nodes: dict[str, Path],
    study: Study,
    client: Callable[[str], HubClient],
    reports: Path,
) -> None:
    """Run both studies and the session (see the module docstring); raises
    `StudyDemoError` (or `SessionDemoError`) when the network's answer is not what it must
    be."""
    names = sorted(nodes)
    hcc = _terms("hcc-response", "Sorafenib response in HCC", study.hcc_spec, names)
    alice = _approved_project(client, hcc, names)
    console.print(
        f"[bold]a.[/] alice filed hcc-response; the stewards of all {len(names)} hospitals "
        "approved; the query runs with secure aggregation (the hub sees only sums)"
    )
    started = time.perf_counter()
    answer = alice.run_query("hcc-response", study.hcc_spec)
    _check_answer(answer)
    console.print(f"    answered in {time.perf_counter() - started:.2f} s")
    for table in answer_tables(answer):
        console.print(table)
    html, _ = write_answer_report(answer, reports / "hcc-response")
    console.print(f"    report: {html} (+ report.json); ledger entries {_ids(answer)}")
    _compare_rates(console, nodes, study, answer)
    run_session(console, alice, "hcc-response", study.hcc_spec)

    mi = _terms("mi-risk", "Myocardial infarction risk model", study.mi_spec, names)
    alice = _approved_project(client, mi, names)
    console.print("[bold]d.[/] project mi-risk: federated logistic regression (Newton-Raphson)")
    started = time.perf_counter()
    answer = alice.run_query("mi-risk", study.mi_spec)
    _check_answer(answer)
    notes = answer["result"]["statistics"][0]["notes"]
    elapsed = time.perf_counter() - started
    console.print(f"    answered in {elapsed:.2f} s ({notes[0] if notes else 'fitted'})")
    html, _ = write_answer_report(answer, reports / "mi-risk")
    _compare_fit(console, nodes, study, answer)
    console.print(f"    report: {html} (+ report.json); ledger entries {_ids(answer)}")


def _ids(answer: dict[str, Any]) -> str:
    ids = answer.get("ledger_entries", [])
    return f"{ids[0]}..{ids[-1]}" if ids else "none"


def _check_answer(answer: dict[str, Any]) -> None:
    if answer["status"] != "completed":
        why = answer.get("reason") or "; ".join(
            f"{r['node']}: {r.get('reason')}" for r in answer["nodes"] if r["status"] != "ok"
        )
        raise StudyDemoError(f"the study query was {answer['status']}: {why}")


def _excluded(directory: Path) -> frozenset[str]:
    return load_consent(directory).excluded(Purpose.HRESCH)


def _compare_rates(
    console: Console, nodes: dict[str, Path], study: Study, answer: dict[str, Any]
) -> None:
    """Recovered vs planted rates (95 % CI), and released numbers vs the union."""
    from medspace.analytics import QuerySpec, layout
    from medspace.analytics.combine import combine
    from medspace.analytics.local import compute_local

    spec = QuerySpec.parse(study.hcc_spec)
    cells = layout(spec)
    total = np.zeros(len(cells))
    for directory in nodes.values():
        with open_node(directory) as node:
            local = compute_local(
                node.store, spec, exclude_pseudonyms=_excluded(directory), min_cell_size=1
            )
        total += np.asarray(local.values)
    union = combine(spec, cells, total.tolist(), {}, 1).model_dump(mode="json")
    federated = next(s for s in answer["result"]["statistics"] if s["id"] == "response_rate")
    pooled = next(s for s in union["statistics"] if s["id"] == "response_rate")
    pooled_rows = {tuple(r["labels"]): r for r in pooled["rows"]}
    table = Table(
        "age band",
        "sex",
        "patients",
        "recovered rate",
        "95 % interval",
        "planted",
        "planted in interval",
        title="sorafenib response: federated vs planted (tolerance: planted value within "
        "the 95 % Wilson interval)",
        title_justify="left",
    )
    inside = shown = 0
    for row in federated["rows"]:
        labels = tuple(row["labels"])
        values = row["values"]
        truth = study.response_truth.get((labels[0], labels[1])) if len(labels) == 2 else None
        if row["suppressed"] or values.get("proportion") is None:
            hidden = str(row["display"].get("n", "hidden"))
            table.add_row(*labels, hidden, "suppressed", "", _pct(truth), "")
            continue
        exact = pooled_rows[labels]["values"]
        for key, value in values.items():
            if value is not None and abs(value - float(exact[key])) > 1e-9:
                raise StudyDemoError(
                    f"the federated {key} for {'/'.join(labels)} differs from the same "
                    "statistic on the union of the stores"
                )
        low, high = values.get("ci_low"), values.get("ci_high")
        ok = truth is not None and low is not None and high is not None and low <= truth <= high
        inside += ok
        shown += 1
        table.add_row(
            *labels,
            f"{values['n']:.0f}",
            _pct(values["proportion"]),
            f"{_pct(low)} - {_pct(high)}",
            _pct(truth),
            "[green]yes[/]" if ok else "[yellow]no[/]",
        )
    console.print(table)
    console.print(
        f"    {inside} of {shown} released cells contain the planted rate in their 95 % "
        "interval; every released number equals the same statistic on the union of the "
        "stores"
    )


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f} %"


def _compare_fit(
    console: Console, nodes: dict[str, Path], study: Study, answer: dict[str, Any]
) -> None:
    from medspace.analytics import QuerySpec
    from medspace.analytics.regression import design_matrix, pooled_logistic

    spec = QuerySpec.parse(study.mi_spec)
    xs, ys = [], []
    for directory in nodes.values():
        with open_node(directory) as node:
            x, y = design_matrix(
                node.store, spec, "mi_model", exclude_pseudonyms=_excluded(directory)
            )
        xs.append(x)
        ys.append(y)
    pooled = pooled_logistic(np.vstack(xs), np.concatenate(ys), tolerance=1e-12)
    fit = next(s for s in answer["result"]["statistics"] if s["id"] == "mi_model")
    table = Table(
        "coefficient",
        "federated",
        "std. error",
        "pooled (union)",
        "|difference|",
        "planted",
        title=f"MI model on {int(sum(len(y) for y in ys))} patients: federated vs pooled fit",
        title_justify="left",
    )
    worst = 0.0
    for coefficient, reference in zip(fit["coefficients"], pooled, strict=True):
        diff = abs(coefficient["estimate"] - float(reference))
        worst = max(worst, diff)
        planted = study.mi_truth.get(coefficient["name"])
        table.add_row(
            coefficient["name"],
            f"{coefficient['estimate']:.6f}",
            f"{coefficient['std_error']:.4f}",
            f"{float(reference):.6f}",
            f"{diff:.1e}",
            "" if planted is None else f"{planted:g}",
        )
    console.print(table)
    if worst > TOLERANCE_FIT:
        raise StudyDemoError(
            f"the federated fit differs from the pooled fit by {worst:.2e} (> {TOLERANCE_FIT:g})"
        )
    console.print(
        f"    federated = pooled to {worst:.1e} (required: <= {TOLERANCE_FIT:g}); the planted "
        "coefficients are recovered within sampling error"
    )
