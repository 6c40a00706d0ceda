"""Federated queries over the real channel (hub and nodes in threads, loopback sockets):
results equal what the test computes from the patients it generated; partial results,
quorum refusals, policy denials, malformed vectors, DP budgets, differencing and the
regression fit, each as the researcher sees them through the HTTP API."""

from __future__ import annotations

import base64
import copy
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.hub.analytics_support import (
    HCC_SPEC,
    KINDS,
    MI_SPEC,
    Person,
    StudyNetwork,
    ledger_entries,
    pooled_logistic,
    study_network,
)

from medspace.analytics.report import read_report
from medspace.hub import HubRequestError
from medspace.hub.analytics_answer import write_answer_report

NODES = {"h1": (90, 1), "h2": (80, 2), "h3": (70, 3)}


@pytest.fixture(scope="module")
def study(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[StudyNetwork, dict[str, list[Person]]]]:
    root = tmp_path_factory.mktemp("study")
    kinds = {"h3": KINDS - {"logistic"}}
    with study_network(root, NODES, kinds) as running:
        yield running


def _cohort(people: list[Person]) -> list[Person]:
    return [p for p in people if p.hcc]


def _rows(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["node"]: r for r in answer["nodes"]}


def _stat(answer: dict[str, Any], statistic: str) -> dict[str, Any]:
    return next(s for s in answer["result"]["statistics"] if s["id"] == statistic)


def test_query_result_equals_the_counts_of_the_generated_patients(study: Any) -> None:
    net, people = study
    alice = net.project("hcc-exact")
    answer = alice.run_query("hcc-exact", HCC_SPEC)
    assert answer["status"] == "completed", answer["nodes"]
    assert {r["status"] for r in answer["nodes"]} == {"ok"}
    cohort = [p for name in NODES for p in _cohort(people[name])]
    patients = _stat(answer, "patients")["rows"][0]
    assert patients["values"]["n"] == len(cohort)
    rate = {r["labels"][0]: r for r in _stat(answer, "rate")["rows"]}
    young = [p for p in cohort if p.age < 60]
    if not rate["<60"]["suppressed"]:
        assert rate["<60"]["values"]["n"] == len(young)
        assert rate["<60"]["values"]["proportion"] == pytest.approx(
            sum(p.responded for p in young) / len(young), abs=1e-9
        )
    mean_age = _stat(answer, "age")["rows"][0]["values"]["mean"]
    assert mean_age == pytest.approx(np.mean([p.age for p in cohort]), abs=1e-6)
    entries = ledger_entries(net.hub.client("bob"), "hcc-exact")
    hub_results = [e for e in entries if e.type.value == "result" and e.actor == "hub"]
    assert hub_results[-1].details["status"] == "completed"
    assert hub_results[-1].details["method"] == "secagg"
    node_results = {e.actor for e in entries if e.type.value == "result" and e.actor != "hub"}
    assert node_results == set(NODES)
    assert answer["ledger_entries"]


def test_stopped_node_makes_the_result_partial_and_is_listed(study: Any) -> None:
    net, _people = study
    alice = net.project("hcc-partial")
    net.stop_node("h3")
    try:
        answer = alice.run_query("hcc-partial", HCC_SPEC)
    finally:
        net.start_node("h3")
    assert answer["status"] == "partial"
    assert answer["missing"] == ["h3"]
    assert _rows(answer)["h3"]["status"] == "missing"
    assert answer["result"]["nodes"] == ["h1", "h2"]


def test_fewer_answering_nodes_than_the_quorum_refuse_the_query(study: Any) -> None:
    net, _people = study
    alice = net.project("hcc-quorum", quorum=3)
    net.stop_node("h2")
    try:
        answer = alice.run_query("hcc-quorum", HCC_SPEC)
    finally:
        net.start_node("h2")
    assert answer["status"] == "refused"
    assert answer["result"] is None
    assert "needs at least 3" in answer["reason"]
    entries = ledger_entries(net.hub.client("bob"), "hcc-quorum")
    assert entries[-1].actor == "hub" and entries[-1].details["status"] == "refused"
    assert entries[-1].details["reason"] == "query/quorum"  # told apart from a budget refusal


def test_node_whose_policy_denies_is_reported_with_its_reason(study: Any) -> None:
    net, _people = study
    alice = net.project("mi-policy")
    answer = alice.run_query("mi-policy", MI_SPEC)
    rows = _rows(answer)
    assert rows["h3"]["status"] == "denied"
    assert "does not allow computation logistic" in rows["h3"]["reason"]
    assert answer["status"] == "completed"  # h3 never joined the fit: not missing


def test_federated_logistic_regression_equals_the_pooled_fit(study: Any) -> None:
    net, people = study
    alice = net.project("mi-fit")
    answer = alice.run_query("mi-fit", MI_SPEC)
    assert answer["status"] == "completed", answer.get("reason")
    fitted = [p for name in ("h1", "h2") for p in people[name]]  # h3 denies logistic
    pooled = pooled_logistic(fitted)
    coefficients = _stat(answer, "mi_model")["coefficients"]
    federated = np.array([c["estimate"] for c in coefficients])
    assert np.max(np.abs(federated - pooled)) < 1e-6


def test_two_regressions_in_one_query_are_both_fitted(study: Any) -> None:
    net, people = study
    alice = net.project("mi-two")
    spec = copy.deepcopy(MI_SPEC)
    smaller = {**spec["statistics"][0], "id": "mi_age_sex", "covariates": ["age", "male"]}
    spec["statistics"].append(smaller)
    answer = alice.run_query("mi-two", spec)
    assert answer["status"] == "completed", answer.get("reason")
    fitted = [p for name in ("h1", "h2") for p in people[name]]  # h3 denies logistic
    coefficients = _stat(answer, "mi_model")["coefficients"]
    federated = np.array([c["estimate"] for c in coefficients])
    assert np.max(np.abs(federated - pooled_logistic(fitted))) < 1e-6
    names = [c["name"] for c in _stat(answer, "mi_age_sex")["coefficients"]]
    assert names == ["intercept", "age", "male"]


def test_malformed_masked_vector_is_rejected_reported_and_ledgered(study: Any) -> None:
    net, people = study
    alice = net.project("hcc-malformed")
    worker = net.nodes["h2"].service._analytics
    assert worker is not None
    original = worker._mask

    def truncated(query: Any, body: dict[str, Any], now: Any) -> dict[str, Any]:
        reply = original(query, body, now)
        masked = copy.deepcopy(reply["masked"])
        raw = base64.b64decode(masked["masked"])
        masked["masked"] = base64.b64encode(raw[:-16]).decode()
        return {**reply, "masked": masked}

    worker._mask = truncated  # type: ignore[method-assign]
    try:
        answer = alice.run_query("hcc-malformed", HCC_SPEC)
    finally:
        worker._mask = original  # type: ignore[method-assign]
    row = _rows(answer)["h2"]
    assert row["status"] == "rejected"
    assert "h2" in row["reason"]
    assert answer["status"] == "partial"
    assert answer["missing"] == ["h2"]
    # h2's masked input was left out after round 1: the others confirmed who survived
    # before revealing their pair seeds with h2, and the sum is exactly theirs
    cohort = [p for name in NODES if name != "h2" for p in _cohort(people[name])]
    assert _stat(answer, "patients")["rows"][0]["values"]["n"] == len(cohort)
    entries = ledger_entries(net.hub.client("bob"), "hcc-malformed")
    assert any(e.details.get("status") == "rejected" and e.node == "h2" for e in entries)


def test_a_sum_whose_counts_are_not_whole_numbers_is_refused(study: Any) -> None:
    # A node adding half a patient (or wrapping the ring) gives a sum no set of honest
    # hospitals can give: refused, not shown as a plausible count.
    net, _people = study
    alice = net.project("hcc-implausible")
    worker = net.nodes["h2"].service._analytics
    original = worker._mask

    def skewed(query: Any, body: dict[str, Any], now: Any) -> dict[str, Any]:
        aggregate = query.aggregate
        pairs = zip(aggregate.values, cells, strict=True)
        values = [v + 0.5 if cell.count else v for v, cell in pairs]
        query.aggregate = dataclasses.replace(aggregate, values=tuple(values))
        return original(query, body, now)

    from medspace.analytics import QuerySpec
    from medspace.analytics.layout import layout

    cells = layout(QuerySpec.parse(HCC_SPEC)).cells
    worker._mask = skewed  # type: ignore[method-assign]
    try:
        answer = alice.run_query("hcc-implausible", HCC_SPEC)
    finally:
        worker._mask = original  # type: ignore[method-assign]
    assert answer["status"] == "refused"
    assert "not whole numbers" in answer["reason"]


def test_node_dropping_out_mid_fit_refuses_the_regression(study: Any) -> None:
    net, _people = study
    alice = net.project("mi-drop")
    worker = net.nodes["h1"].service._analytics
    original = worker._mask

    def fail_second_round(query: Any, body: dict[str, Any], now: Any) -> dict[str, Any]:
        if body.get("round", 0) >= 2:
            return {"type": "reply", "status": "error", "reason": "disk full", "entries": []}
        return original(query, body, now)

    worker._mask = fail_second_round  # type: ignore[method-assign]
    try:
        answer = alice.run_query("mi-drop", MI_SPEC)
    finally:
        worker._mask = original  # type: ignore[method-assign]
    assert answer["status"] == "refused"
    assert "dropped out during the fit" in answer["reason"] or "only 1 node" in answer["reason"]


def test_dp_query_over_the_budget_is_refused(study: Any, tmp_path: Path) -> None:
    net, _people = study
    alice = net.project("hcc-dp", disclosure={"min_cell_size": 5, "dp_epsilon": "1"})
    spec = {**HCC_SPEC, "statistics": [{"id": "patients", "kind": "count"}]}
    first = alice.run_query("hcc-dp", spec, epsilon="0.6")
    assert first["status"] == "completed", first.get("reason")
    assert first["dp"]["epsilon_left"] == "0.4"
    html, json_path = write_answer_report(first, tmp_path / "report")
    report = read_report(json_path)
    assert report.dp is not None and str(report.dp.epsilon_left) == "0.4"
    assert "0.4" in html.read_text(encoding="utf-8")
    second = alice.run_query("hcc-dp", spec, epsilon="0.6")
    assert second["status"] == "refused"
    assert all(r["status"] == "denied" for r in second["nodes"])
    assert "0.4" in second["nodes"][0]["reason"]
    refused = ledger_entries(net.hub.client("bob"), "hcc-dp")[-1]
    assert refused.details["status"] == "refused"
    assert refused.details["reason"] == "query/quorum"  # every node denied it first


def test_differencing_attack_is_refused_over_the_network(study: Any) -> None:
    net, people = study
    alice = net.project("hcc-diff")
    base = {**HCC_SPEC, "statistics": [{"id": "patients", "kind": "count"}]}
    assert alice.run_query("hcc-diff", base)["status"] == "completed"
    # "the same cohort except its oldest patients": at h1 this leaves out 1 to 4 people.
    ages = sorted(p.age for p in _cohort(people["h1"]))
    cut = ages[-3] - 1
    narrower = copy.deepcopy(base)
    narrower["cohort"]["age"] = {"min": 0, "max": cut}
    answer = alice.run_query("hcc-diff", narrower)
    row = _rows(answer)["h1"]
    assert row["status"] == "refused"
    assert "differ" in row["reason"]


def test_a_cell_hidden_by_one_query_is_not_given_away_by_the_next(study: Any) -> None:
    """The classic two-query attack on one cohort: "count by band" hides h1's few old
    patients; "count" would give them away (total - young), so h1 hides its total."""
    net, people = study
    alice = net.project("hcc-cells")
    ages = sorted(p.age for p in _cohort(people["h1"]))
    cut = next(c for c in sorted(set(ages), reverse=True) if 1 <= sum(a > c for a in ages) <= 4)
    bands = [{"label": "young", "min": 0, "max": cut}, {"label": "old", "min": cut + 1, "max": 200}]
    by_band = {
        **HCC_SPEC,
        "variables": {"band": {"kind": "age_band", "bands": bands}},
        "statistics": [{"id": "by_band", "kind": "count", "by": ["band"]}],
    }
    first = alice.run_query("hcc-cells", by_band)
    assert first["status"] == "completed", first["nodes"]
    rows = {r["labels"][0]: r for r in _stat(first, "by_band")["rows"]}
    assert rows["old"]["suppressed"] and not rows["young"]["suppressed"]
    total = {**HCC_SPEC, "statistics": [{"id": "patients", "kind": "count"}]}
    second = alice.run_query("hcc-cells", total)
    assert second["status"] == "completed", second["nodes"]
    assert _stat(second, "patients")["rows"][0]["suppressed"]
    reasons = [c for c in second["result"]["suppressed"] if c["statistic"] == "patients"]
    assert any(r.startswith("h1: ") for c in reasons for r in c["reasons"])
    # in another project nothing was released about the cohort: the total is shown
    other = net.project("hcc-cells-fresh").run_query("hcc-cells-fresh", total)
    assert not _stat(other, "patients")["rows"][0]["suppressed"]


def test_query_with_a_bad_spec_is_refused_before_anything_is_sent(study: Any) -> None:
    net, _people = study
    alice = net.project("hcc-badspec")
    before = len(ledger_entries(net.hub.client("bob"), "hcc-badspec"))
    with pytest.raises(HubRequestError, match="statistics") as refused:
        alice.run_query("hcc-badspec", {"statistics": []})
    assert refused.value.http_status == 400
    assert len(ledger_entries(net.hub.client("bob"), "hcc-badspec")) == before


def test_epsilon_for_a_project_without_dp_is_refused(study: Any) -> None:
    net, _people = study
    alice = net.project("hcc-nodp")
    with pytest.raises(HubRequestError, match="does not use differential privacy"):
        alice.run_query("hcc-nodp", HCC_SPEC, epsilon="0.5")


def test_bad_unmasking_share_is_ledgered_and_the_sum_rebuilt_from_the_others(study: Any) -> None:
    net, people = study
    alice = net.project("hcc-badshare")
    worker = net.nodes["h2"].service._analytics
    original = worker._reveal

    def garbled(query: Any, body: dict[str, Any], step: str) -> dict[str, Any]:
        reply = original(query, body, step)
        return {**reply, "unmask": {"format": "nonsense"}} if step == "unmask" else reply

    worker._reveal = garbled  # type: ignore[method-assign]
    try:
        answer = alice.run_query("hcc-badshare", HCC_SPEC)
    finally:
        worker._reveal = original  # type: ignore[method-assign]
    assert answer["status"] == "completed", answer.get("reason")
    row = _rows(answer)["h2"]
    assert row["status"] == "ok" and "unmasking share rejected" in row["reason"]
    cohort = [p for name in NODES for p in _cohort(people[name])]
    assert _stat(answer, "patients")["rows"][0]["values"]["n"] == len(cohort)
    entries = ledger_entries(net.hub.client("bob"), "hcc-badshare")
    assert any(e.details.get("reason") == "secagg-bad-share" and e.node == "h2" for e in entries)


@pytest.mark.parametrize("bad", [-1.0, 20.5, float(2**100)])
def test_count_cells_must_sum_to_whole_numbers_of_at_least_zero(bad: float) -> None:
    from medspace.analytics import QuerySpec
    from medspace.analytics.layout import layout
    from medspace.hub.analytics_secsum import check_counts
    from medspace.hub.analytics_session import QueryRefused

    cells = layout(QuerySpec.parse(HCC_SPEC))
    total = [20.0 if cell.count else -3.25 for cell in cells.cells]
    check_counts(cells, total)  # sums of values may be negative or fractional
    first_count = next(i for i, cell in enumerate(cells.cells) if cell.count)
    total[first_count] = bad
    if float(bad).is_integer() and bad >= 0:
        check_counts(cells, total)  # a huge count is not caught: a node can always lie
    else:
        with pytest.raises(QueryRefused, match="not whole numbers"):
            check_counts(cells, total)
