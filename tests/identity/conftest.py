"""Fixtures for identity tests: engines for SQLite and (when reachable) PostgreSQL."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from medspace.identity import ScryptParams

PG_URL = os.environ.get("MEDSPACE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def fast_params() -> ScryptParams:
    """A cheap but real scrypt cost, so tests that create many users stay fast (the
    default cost is exercised in test_passwords.py)."""
    return ScryptParams(log2_n=10, r=8, p=1)


@pytest.fixture
def t0() -> datetime:
    """A fixed 'now' so expiry tests never depend on the clock or machine speed."""
    return datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)


def _postgres_engine() -> Iterator[Engine]:
    """An engine on a fresh schema of the test PostgreSQL, dropped afterwards."""
    schema = f"t_identity_{secrets.token_hex(4)}"
    admin = sa.create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL at {PG_URL} is not reachable ({type(exc).__name__})")
    engine = sa.create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The same test on SQLite (a file) and on PostgreSQL (an isolated schema)."""
    if request.param == "sqlite":
        eng = sa.create_engine(f"sqlite:///{tmp_path / 'identity.db'}")
        yield eng
        eng.dispose()
    else:
        yield from _postgres_engine()
