"""Shared fixtures for the de-identification tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from medspace.deid.keys import DeidKey


@pytest.fixture
def key() -> DeidKey:
    """A fixed test key (never use a constant key outside tests)."""
    return DeidKey(bytes(range(32)))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """/work/shared/data (../shared/data from the repository root); skips when absent."""
    path = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared sample data not found at {path}")
    return path


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small fixed-seed synthetic export (2 hospitals, mixed zh/en) with gold spans."""
    synth = pytest.importorskip("medspace.synth", reason="medspace.synth makes the gold notes")
    out = tmp_path_factory.mktemp("synthetic")
    synth.generate(out, hospitals=2, patients=120, seed=20240305, locale="mixed")
    return out
