"""Shared fixtures: the test PostgreSQL (skipped with a visible reason when unreachable).

MEDSPACE_TEST_PG_URL overrides the default URL.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def pg_url() -> str:
    """URL of the test PostgreSQL, probed once with a 2 s connect timeout."""
    url = os.environ.get("MEDSPACE_TEST_PG_URL", DEFAULT_PG_URL)
    shown = make_url(url).render_as_string(hide_password=True)
    engine = sa.create_engine(url, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.SQLAlchemyError as exc:
        pytest.skip(f"PostgreSQL at {shown} is not reachable ({type(exc).__name__})")
    finally:
        engine.dispose()
    return url


@pytest.fixture
def pg_schema_url(pg_url: str) -> Iterator[str]:
    """A URL whose connections use a fresh schema (search_path), dropped afterwards."""
    schema = f"t_{secrets.token_hex(6)}"
    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """The same test on SQLite (a file) and on PostgreSQL (a fresh schema, dropped after)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
    else:
        url = request.getfixturevalue("pg_schema_url")
    eng = sa.create_engine(url)
    yield eng
    eng.dispose()
