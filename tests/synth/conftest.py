"""Fixtures for the synthetic-hospital tests: small generated runs, shared per session."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medspace.synth import generate

SMALL = {"hospitals": 3, "patients": 150, "seed": 7, "locale": "mixed"}
COHORT = {"hospitals": 1, "patients": 2000, "seed": 11, "locale": "en_US"}


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 mixed-locale hospitals of 150 patients (seed 7), written once per session."""
    out = tmp_path_factory.mktemp("synth") / "small"
    generate(out, **SMALL)  # type: ignore[arg-type]
    return out


@pytest.fixture(scope="session")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One hospital of 2,000 patients (seed 11), for the planted clinical signals."""
    out = tmp_path_factory.mktemp("synth") / "cohort"
    generate(out, **COHORT)  # type: ignore[arg-type]
    return out


def ndjson(path: Path) -> Iterator[dict[str, Any]]:
    """The resources of one NDJSON file."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)


def csv_rows(path: Path, encoding: str) -> list[dict[str, str]]:
    """The rows of one CSV export file as dicts."""
    with path.open(encoding=encoding, newline="") as handle:
        return list(csv.DictReader(handle))


def hospitals(run: Path) -> list[dict[str, Any]]:
    """hospitals.json of a run."""
    return json.loads((run / "hospitals.json").read_text(encoding="utf-8"))


def gold_notes(run: Path, hospital: str) -> list[dict[str, Any]]:
    """notes_gold.jsonl of one hospital."""
    return list(ndjson(run / hospital / "notes_gold.jsonl"))
