"""Shared fixtures for connector tests: the shared sample data and small file writers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO / ".." / "shared" / "data"
BAD = REPO / "tests" / "data" / "bad"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """/work/shared/data (../shared/data from the repo root); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared sample data not found at {SHARED_DATA.resolve()}")
    return SHARED_DATA.resolve()


@pytest.fixture
def write_ndjson(tmp_path: Path) -> Callable[..., Path]:
    """Write resources (dicts, or raw str/bytes lines) as an NDJSON file."""

    def write(*lines: Any, name: str = "data.ndjson") -> Path:
        path = tmp_path / name
        raw = []
        for line in lines:
            if isinstance(line, dict):
                raw.append(json.dumps(line).encode())
            elif isinstance(line, str):
                raw.append(line.encode())
            else:
                raw.append(line)
        path.write_bytes(b"\n".join(raw) + b"\n")
        return path

    return write


@pytest.fixture
def write_bundle(tmp_path: Path) -> Callable[..., Path]:
    """Write entries (dicts) as a pretty-printed Bundle JSON file."""

    def write(
        *entries: dict[str, Any], bundle_type: str = "transaction", name: str = "b.json"
    ) -> Path:
        path = tmp_path / name
        doc = {"resourceType": "Bundle", "type": bundle_type, "entry": list(entries)}
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
        return path

    return write


@pytest.fixture
def write_hl7(tmp_path: Path) -> Callable[..., Path]:
    """Write segments joined by `sep` (default the standard carriage return)."""

    def write(
        *segments: str, sep: str = "\r", name: str = "msg.hl7", encoding: str = "utf-8"
    ) -> Path:
        path = tmp_path / name
        path.write_bytes(sep.join(segments).encode(encoding) + sep.encode())
        return path

    return write
