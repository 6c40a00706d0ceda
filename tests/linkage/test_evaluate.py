"""Linkage quality on synthetic hospitals, and the demo's showcase person found at all
three hospitals (at one by a fuzzy match only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from medspace.linkage import LinkageKey, ensure_table, probe, tokens_for_patients, write_tokens
from medspace.linkage.cli import app
from medspace.linkage.evaluate import _patients, evaluate
from medspace.synth import generate

KEY = LinkageKey(bytes(range(32)))


@pytest.fixture(scope="module")
def hospitals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("linkage") / "hospitals"
    generate(out, hospitals=3, patients=200, seed=5, locale="mixed")
    return out


def test_exact_tokens_are_never_wrong_and_combined_linkage_finds_nearly_all(
    hospitals: Path,
) -> None:
    result = evaluate(hospitals, key=KEY)
    assert result.truth_pairs > 30
    assert result.exact.precision == 1.0
    assert result.exact.recall < 1.0  # a missing ID hides a pair from the exact token
    assert result.combined.recall > result.exact.recall
    assert result.combined.precision >= 0.97 and result.combined.recall >= 0.97
    assert result.fuzzy.recall >= 0.97
    assert result.by_noise["missing_id"].recall == 1.0  # the CLK needs no ID
    document = result.to_json()
    assert document["exact"]["precision"] == 1.0
    assert set(document["fuzzy_by_threshold"]) >= {"0.80", "0.83", "0.90"}


def test_phone_and_address_evidence_never_costs_precision_and_keeps_recall(
    hospitals: Path,
) -> None:
    result = evaluate(hospitals, key=KEY)
    assert result.fuzzy.precision >= result.name_only.precision
    assert result.fuzzy.recall >= 0.99 and result.name_only.recall >= 0.97
    for kind in ("missing_phone", "new_address"):  # what the evidence could wrongly veto
        assert result.by_noise[kind].recall == 1.0
    # At a loose threshold the name alone lets different people through; evidence does not.
    assert result.fuzzy_curve[0.7].precision > result.name_only_curve[0.7].precision
    document = result.to_json()
    assert set(document["fuzzy_name_only_recall_by_noise"]) == set(
        document["fuzzy_recall_by_noise"]
    )


def test_the_showcase_is_found_at_all_three_hospitals(hospitals: Path) -> None:
    truth = json.loads((hospitals / "linkage_truth.json").read_text(encoding="utf-8"))
    showcase = next(p for p in truth["persons"] if p.get("showcase"))
    records = {r["hospital"]: r["patient_id"] for r in showcase["records"]}
    home = showcase["records"][0]["hospital"]
    asked = next(p for p in _patients(hospitals, home) if p.source_id == records[home])
    tokens = tokens_for_patients(KEY, [asked])[0]
    assert tokens is not None and tokens.exact is not None
    found = {}
    for hospital, patient_id in records.items():
        people = list(_patients(hospitals, hospital))
        engine = sa.create_engine("sqlite://")
        ensure_table(engine)
        with engine.begin() as conn:
            made = tokens_for_patients(KEY, people)
            write_tokens(conn, [(p.source_id, t) for p, t in zip(people, made, strict=True)])
        matches = probe(engine, tokens)
        assert [m.person_source_id for m in matches] == [patient_id]
        found[hospital] = matches[0].kind
    assert found[showcase["noise"]["hospital"]] == "fuzzy"
    assert sorted(found.values()) == ["exact", "exact", "fuzzy"]


def test_evaluate_command_prints_json(hospitals: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", str(hospitals), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["exact"]["precision"] == 1.0 and document["threshold"] == 0.83


def test_evaluate_refuses_a_folder_that_is_not_synthetic(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path)])
    assert result.exit_code == 2 and "medspace synth" in result.output
