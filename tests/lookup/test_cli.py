"""`medspace lookup` refuses bad input before anything is sent, and never echoes it."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.lookup.support import make_lookup_node
from typer.testing import CliRunner

from medspace.linkage import LinkageKey
from medspace.lookup.cli import app

WRONG_CHECK_DIGIT = "110101199003077778"  # GB 11643: the check character should be 7... not 8
NOWHERE = "http://127.0.0.1:9"  # nothing listens: a request that was sent would fail loudly


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_lookup_node(tmp_path_factory.mktemp("cli") / "h1", "h1", LinkageKey.generate())


def _run(node: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        ["--node", str(node), "--as", "dr-h1", "--hub", NOWHERE, *args],
        env={"MEDSPACE_PASSWORD": "x"},
    )
    return result.exit_code, result.output


def test_a_wrong_check_digit_is_a_clear_error_and_nothing_is_sent(node: Path) -> None:
    code, out = _run(node, "--id", WRONG_CHECK_DIGIT, "--reason", "unconscious, needs history")
    assert code == 2
    assert "check digit" in out and WRONG_CHECK_DIGIT not in out
    assert "did not answer" not in out  # refused before contacting the hub


def test_a_missing_justification_is_refused(node: Path) -> None:
    code, out = _run(node, "--name", "Jo Bloggs", "--dob", "1970-01-01")
    assert code == 2 and "--reason" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "Jo Bloggs", "--reason", "x" * 20], "--dob"),  # a name alone is too little
        (["--id", "1", "--id-system", "NHS", "--reason", "x" * 20], "--id-system"),
        (["--name", "Jo", "--dob", "1970-13-01", "--reason", "x" * 20], "--dob"),
    ],
)
def test_unusable_identities_are_refused(node: Path, args: list[str], message: str) -> None:
    code, out = _run(node, *args)
    assert code == 2 and message in out
