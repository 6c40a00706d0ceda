"""The hub's database engine: SQLite (default, WAL) or PostgreSQL (psycopg 3) by URL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from medspace.hub.errors import HubConfigError

POOL_SIZE = 40
"""Connections kept open: anyio's default worker-thread limit, which FastAPI's sync
routes run in."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets API readers run beside the ledger writer; busy_timeout makes a second
    # writer wait for the lock instead of failing at once.
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_hub_engine(url: str) -> sa.Engine:
    """An engine for the hub database. `postgresql://` URLs use psycopg 3.

    Raises `HubConfigError` for a malformed URL or an unsupported database."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise HubConfigError(
            "the hub database URL is malformed; use sqlite:///PATH/hub.db or "
            "postgresql+psycopg://USER@HOST:5432/DB"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return sa.create_engine(parsed, hide_parameters=True, pool_pre_ping=True)
    if backend != "sqlite":
        raise HubConfigError(f"database {backend!r} is not supported; use SQLite or PostgreSQL")
    # The API serves requests from a pool of threads: keep as many connections open as
    # it runs at once, so that a busy hub does not open (and PRAGMA) a fresh one per call.
    engine = sa.create_engine(
        parsed,
        hide_parameters=True,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=POOL_SIZE,
        max_overflow=POOL_SIZE,
    )
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine
