"""Fixtures for identity tests: engines for SQLite and (when reachable) PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from medspace.identity import ScryptParams


@pytest.fixture
def fast_params() -> ScryptParams:
    """A cheap but real scrypt cost, so tests that create many users stay fast (the
    default cost is exercised in test_passwords.py)."""
    return ScryptParams(log2_n=10, r=8, p=1)


@pytest.fixture
def t0() -> datetime:
    """A fixed 'now' so expiry tests never depend on the clock or machine speed."""
    return datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)
