"""The ledger's tables (SQLAlchemy Core; SQLite and PostgreSQL). Only this package reads them.

`ledger_entries` holds, per leaf, the signed entry body (the leaf data), its RFC 9162 leaf
hash and the interior nodes this leaf completes (level 1 first, 32 bytes each): node
(level L, index k) lives in the row of leaf ((k + 1) << L) - 1. The `type`, `actor`,
`node`, `project` and `time` columns copy fields of the body for lookups; `audit_verify`
checks them against the body.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()


class _Blob(LargeBinary):
    """Binary column whose values go to the driver as they are (both SQLite and psycopg
    take `bytes`); skipping SQLAlchemy's per-value wrapping speeds up bulk appends."""

    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:
        return None


head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("origin", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
)

entries = Table(
    "ledger_entries",
    metadata,
    # On SQLite an INTEGER primary key is the rowid itself: no separate index to keep on
    # append, and range scans in index order read the table directly.
    Column(
        "idx",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("leaf_hash", _Blob(32), nullable=False),
    Column("nodes", _Blob, nullable=False),
    Column("body", _Blob, nullable=False),
    Column("type", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("node", String(128)),
    Column("project", String(128)),
    Column("time", String(40), nullable=False),
    Index("ix_ledger_entries_project", "project", "idx"),
    Index("ix_ledger_entries_type", "type", "idx"),
)

checkpoints = Table(
    "ledger_checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
)

cosignatures = Table(
    "ledger_cosignatures",
    metadata,
    Column("size", BigInteger, ForeignKey("ledger_checkpoints.size"), primary_key=True),
    Column("witness", String(255), primary_key=True),
    Column("line", Text, nullable=False),
)
