"""The analytics indexes: a new store has them, and a store made before them gains them
when it is opened (on SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from medspace.node import Node, open_node
from medspace.store.schema import ANALYTICS_INDEXES


def _present(engine: sa.Engine) -> set[str]:
    inspector = sa.inspect(engine)
    tables = {i.table.name for i in ANALYTICS_INDEXES if i.table is not None}
    return {str(i["name"]) for t in tables for i in inspector.get_indexes(t)}


def _wanted() -> set[str]:
    return {str(i.name) for i in ANALYTICS_INDEXES}


def test_a_new_store_has_the_analytics_indexes(node: Node) -> None:
    assert _wanted() <= _present(node.store.engine)


def test_an_old_store_gains_the_indexes_on_open(node_dir: Path) -> None:
    with open_node(node_dir) as node:
        engine = node.store.engine
        with engine.begin() as conn:
            for index in ANALYTICS_INDEXES:
                conn.execute(sa.schema.DropIndex(index))
        assert not _wanted() & _present(engine)
    with open_node(node_dir) as node:
        assert _wanted() <= _present(node.store.engine)
    with open_node(node_dir) as node:  # a second open finds them and changes nothing
        assert _wanted() <= _present(node.store.engine)
