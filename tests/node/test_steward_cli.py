"""A steward sets the node's standing policy and records opt-outs from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from medspace.cli import app
from medspace.model import Patient
from medspace.node import init_node, open_node
from medspace.node.standing import load_consent, load_node_policy
from medspace.policy import Purpose

runner = CliRunner()


@pytest.fixture
def node(tmp_path: Path) -> Path:
    from medspace.connectors import Parsed

    directory = tmp_path / "h1"
    init_node(directory, "h1")
    store = open_node(directory).store
    store.ingest([Parsed("t", "line 1", (Patient(source_id="P1", sex="female"),))], source="t")
    return directory


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_a_new_node_denies_everything_until_a_steward_allows(node: Path) -> None:
    code, output = run("node", "policy", "--node", str(node))
    assert code == 0
    assert "none (deny all)" in output
    assert load_node_policy(node, "h1").allowed_purposes == frozenset()


def test_policy_changes_only_the_rules_given(node: Path) -> None:
    run("node", "policy", "--node", str(node), "--allow-purpose", "hresch", "--min-cell", "15")
    code, _ = run("node", "policy", "--node", str(node), "--allow-computation", "count")
    assert code == 0
    policy = load_node_policy(node, "h1")
    assert policy.allowed_purposes == {Purpose.HRESCH}
    assert policy.allowed_computations == {"count"}
    assert policy.min_cell_floor == 15


def test_unknown_purpose_is_refused_and_nothing_is_written(node: Path) -> None:
    code, output = run("node", "policy", "--node", str(node), "--allow-purpose", "SPYING")
    assert code == 2
    assert "unknown purpose" in output
    assert not (node / "policy.json").exists()


def test_opt_out_is_kept_by_pseudonym_never_by_patient_id(node: Path) -> None:
    code, _ = run("node", "opt-out", "--node", str(node), "--patient", "P1", "--purpose", "HRESCH")
    assert code == 0
    pseudonym = open_node(node).store.pseudonym("P1")
    consent = load_consent(node)
    assert consent.opted_out(pseudonym, Purpose.HRESCH)
    assert not consent.opted_out(pseudonym, Purpose.ETREAT)
    assert "P1" not in (node / "consent.json").read_text()


def test_opt_out_of_an_unknown_patient_is_refused(node: Path) -> None:
    code, output = run(
        "node", "opt-out", "--node", str(node), "--patient", "P9", "--purpose", "HRESCH"
    )
    assert code != 0
    assert "no patient" in output
    assert not (node / "consent.json").exists()
