"""Engines and dialect-specific statements: SQLite (default) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import date
from operator import itemgetter
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Date, DateTime, Engine, Table, bindparam, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.sql.dml import Insert

from medspace.store.errors import StoreConfigError

SUPPORTED = ("sqlite", "postgresql")


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the ingest writer; NORMAL syncs at checkpoints, which
    # in WAL mode keeps the database consistent after a crash (may lose the last commit
    # on power loss only). busy_timeout waits for another writer instead of failing at once.
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()


def make_engine(url: str) -> Engine:
    """An engine for a SQLite or PostgreSQL URL; SQLite gets WAL and synchronous=NORMAL.

    Parameters are hidden from SQLAlchemy's error messages: they may hold patient data.
    Raises `StoreConfigError` for a malformed URL or an unsupported database.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreConfigError(
            "the database URL is malformed: give a URL like sqlite:///PATH/store.db or "
            "postgresql+psycopg://USER@HOST:5432/DB"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED:
        raise StoreConfigError(
            f"database {backend!r} is not supported: use SQLite or PostgreSQL "
            "(postgresql+psycopg://...)"
        )
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, hide_parameters=True)
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def upsert(engine: Engine, table: Table, columns: Sequence[str]) -> Insert:
    """INSERT (columns) ... ON CONFLICT (source_id) DO UPDATE of the given columns.

    Re-ingest overwrites a row in place (the newest source wins) and never duplicates it.
    """
    insert = sqlite.insert if engine.dialect.name == "sqlite" else postgresql.insert
    stmt = insert(table).values(
        {name: bindparam(name, type_=table.c[name].type) for name in columns}
    )
    changes = {name: stmt.excluded[name] for name in columns if name != "source_id"}
    return stmt.on_conflict_do_update(index_elements=[table.c.source_id], set_=changes)


class BulkUpsert:
    """An upsert compiled once and run with the driver's executemany.

    SQLAlchemy's per-row parameter processing costs more than SQLite's insert itself, so
    rows go to the driver directly. psycopg adapts Python values natively; for SQLite,
    dates and datetimes are written in the text formats SQLAlchemy's SQLite `Date` and
    `DateTime` types store and parse ("YYYY-MM-DD", "YYYY-MM-DD HH:MM:SS.ffffff"), so
    Core queries read them back as `date` / `datetime`.
    """

    def __init__(self, engine: Engine, table: Table, columns: Sequence[str]) -> None:
        compiled = upsert(engine, table, columns).compile(
            dialect=engine.dialect, for_executemany=True
        )
        self._sql = str(compiled)
        self._sqlite = engine.dialect.name == "sqlite"
        names = list(compiled.positiontup or []) if self._sqlite else list(columns)
        self._pick = itemgetter(*names) if len(names) > 1 else lambda row: (row[names[0]],)
        self._dates = [i for i, n in enumerate(names) if isinstance(table.c[n].type, Date)]
        self._times = [i for i, n in enumerate(names) if isinstance(table.c[n].type, DateTime)]

    def run(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Upsert `rows` (dicts with exactly the columns given at construction)."""
        if not self._sqlite:
            conn.exec_driver_sql(self._sql, rows)
            return
        pick, dates, times = self._pick, self._dates, self._times
        params: list[Any] = []
        for row in rows:
            values = list(pick(row))
            for i in dates:
                if values[i] is not None:
                    values[i] = date.isoformat(values[i])
            for i in times:
                if values[i] is not None:
                    values[i] = values[i].isoformat(" ", "microseconds")
            params.append(tuple(values))
        conn.exec_driver_sql(self._sql, params)


def describe_db_error(exc: SQLAlchemyError) -> str:
    """A one-line cause for a database error that quotes no row values.

    PostgreSQL's DETAIL lines quote key values (which may be identifiers), so only the
    SQLSTATE and primary message are kept; SQLite's messages name columns, not values.
    """
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    if orig is None:  # raised by SQLAlchemy itself: its messages carry no row values
        first = str(exc).splitlines()[0] if str(exc) else ""
        return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    name = type(orig).__name__
    if isinstance(orig, sqlite3.Error):
        return f"{name}: {orig}"
    state = getattr(orig, "sqlstate", None)
    if state is None:  # raised by the driver itself (connection, protocol): no row values
        first = str(orig).splitlines()[0] if str(orig) else ""
        return f"{name}: {first}" if first else name
    primary = getattr(getattr(orig, "diag", None), "message_primary", None)
    return f"{name} [{state}]: {primary}" if primary else f"{name} [{state}]"
