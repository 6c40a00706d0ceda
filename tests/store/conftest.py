"""Store fixtures: every test runs on SQLite (the node's default file) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from medspace.node import Node, init_node, open_node


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str | None:
    """None (the node's default SQLite file) or a URL on a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("pg_schema_url")
    return url


@pytest.fixture
def node_dir(tmp_path: Path, db_url: str | None) -> Path:
    """A freshly initialised node directory."""
    directory = tmp_path / "node"
    init_node(directory, "test-node", db_url)
    return directory


@pytest.fixture
def node(node_dir: Path) -> Iterator[Node]:
    """The opened node; closed afterwards."""
    opened = open_node(node_dir)
    yield opened
    opened.close()


@pytest.fixture
def raw_db(node: Node) -> Iterator[sa.Engine]:
    """A plain engine on the node's database, for tests that look at or tamper with rows."""
    engine = sa.create_engine(node.config.db_url)
    yield engine
    engine.dispose()
