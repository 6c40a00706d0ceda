"""The append-only log: signed entries in an RFC 9162 tree, stored with SQLAlchemy Core.

Appends verify every entry signature, then store a whole batch in one transaction. They
never recompute the tree: the right frontier is read back (O(log n) rows), extended leaf by
leaf, and the interior nodes each leaf completes are stored with it, so inclusion and
consistency proofs cost O(log n) row lookups. Concurrent appenders are serialised by
updating the head row first (a row lock on PostgreSQL, the write lock on SQLite).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    Update,
    bindparam,
    exc,
    func,
    insert,
    select,
    update,
)

from medspace.ledger import tables
from medspace.ledger.batch import BatchRef, batch_proof
from medspace.ledger.checkpoint import (
    Checkpoint,
    Cosignature,
    CosignatureVerifier,
    SignedCheckpoint,
    sign_checkpoint,
)
from medspace.ledger.compact import Frontier, frontier_nodes
from medspace.ledger.entry import EntryType, SignedEntry
from medspace.ledger.errors import (
    CheckpointError,
    EntryNotFound,
    LogStateError,
    ProofError,
)
from medspace.ledger.keys import KeyResolver, verify_entries
from medspace.ledger.merkle import HASH_SIZE, Node, consistency_proof, inclusion_proof, root_hash
from medspace.ledger.note import Note, NoteSignature, NoteSigner
from medspace.ledger.witness import Quorum

_BATCH_ROWS = 10_000
_sha256 = hashlib.sha256


@dataclass(frozen=True)
class LoggedEntry:
    """An entry as stored: its index in the log, the signed entry and its leaf hash."""

    index: int
    signed: SignedEntry
    leaf_hash: bytes


_ENTRY_COLUMNS = ("idx", "leaf_hash", "nodes", "body", "type", "actor", "node", "project", "time")


# Built once: an append is a few small statements, and building them (and compiling the
# insert) each time cost the hub ~3 % of its CPU under analysis-session load.
_GROW: Update = update(tables.head).values(size=tables.head.c.size + bindparam("grow"))
_HEAD_SIZE = select(tables.head.c.size)
_INSERT = insert(tables.entries)


@lru_cache(maxsize=8)
def _driver_insert(dialect: Dialect) -> str | None:
    """The entry insert compiled for `dialect`, if its parameters are positional in
    `_ENTRY_COLUMNS` order (so rows can go to the driver as they are), else None."""
    compiled = _INSERT.compile(dialect=dialect)
    if compiled.positional and tuple(compiled.positiontup or ()) == _ENTRY_COLUMNS:
        return str(compiled)
    return None


def _insert_entries(conn: Connection, rows: Sequence[tuple[object, ...]]) -> None:
    """Insert entry rows (in `_ENTRY_COLUMNS` order) with one driver-level executemany.

    The statement is compiled by SQLAlchemy for the connection's dialect; the rows go to
    the driver as they are (bytes, str, int need no conversion), which skips SQLAlchemy's
    per-row parameter processing, a third of an append's cost on SQLite."""
    statement = _driver_insert(conn.dialect)
    if statement is not None:
        conn.exec_driver_sql(statement, list(rows))
    else:
        conn.execute(_INSERT, [dict(zip(_ENTRY_COLUMNS, row, strict=True)) for row in rows])


class _Nodes:
    """Reads perfect-subtree hashes from the entries table through one connection."""

    def __init__(self, conn: Connection, size: int) -> None:
        self._conn = conn
        self._size = size

    def node_hashes(self, nodes: Collection[Node]) -> Mapping[Node, bytes]:
        wanted = {node.last_leaf for node in nodes}
        if any(leaf >= self._size for leaf in wanted):
            raise ProofError("asked for a subtree beyond the log's size")
        t = tables.entries
        rows = {
            row.idx: row
            for row in self._conn.execute(
                select(t.c.idx, t.c.leaf_hash, t.c.nodes).where(t.c.idx.in_(wanted))
            )
        }
        found: dict[Node, bytes] = {}
        for node in nodes:
            row = rows.get(node.last_leaf)
            value = None
            if row is not None:
                data = row.leaf_hash if node.level == 0 else row.nodes
                start = 0 if node.level == 0 else (node.level - 1) * HASH_SIZE
                value = bytes(data[start : start + HASH_SIZE])
            if value is None or len(value) != HASH_SIZE:
                raise LogStateError(
                    f"tree node at level {node.level} for entry {node.last_leaf} is missing; "
                    "the log's tables are damaged: run `medspace audit verify`"
                )
            found[node] = value
        return found


class Log:
    """The ledger log on an SQLAlchemy engine. Use `Log.create` once, then `Log(...)`."""

    def __init__(self, engine: Engine, keys: KeyResolver) -> None:
        """Open an initialised log; raises `LogStateError` when its tables are missing."""
        self._engine = engine
        self._keys = keys
        try:
            with engine.connect() as conn:
                row = conn.execute(select(tables.head.c.origin)).one_or_none()
        except exc.DBAPIError:
            row = None
        if row is None:
            raise LogStateError(
                "the ledger tables are missing; create the log first (Log.create / hub init)"
            )
        self.origin: str = row.origin
        # The frontier after this process's last append: the next append starts from it
        # instead of reading it back, unless another writer appended in between (the
        # sizes differ then). A log only grows, so a frontier of size N stays right.
        self._tip: Frontier | None = None

    @classmethod
    def create(cls, engine: Engine, origin: str, keys: KeyResolver) -> Log:
        """Create the tables and head row if absent; raises `LogStateError` if a log with
        another origin is already there."""
        Checkpoint(origin, 0, bytes(HASH_SIZE))  # validates the origin
        tables.metadata.create_all(engine)
        with engine.begin() as conn:
            row = conn.execute(select(tables.head.c.origin)).one_or_none()
            if row is None:
                conn.execute(insert(tables.head).values(id=1, origin=origin, size=0))
            elif row.origin != origin:
                raise LogStateError(
                    "this database already holds a log with another origin; use that origin "
                    "or a fresh database"
                )
        return cls(engine, keys)

    def size(self) -> int:
        """Number of entries appended so far."""
        with self._engine.connect() as conn:
            return int(conn.execute(select(tables.head.c.size)).scalar_one())

    def append(self, entries: Sequence[SignedEntry]) -> list[int]:
        """Verify and append a batch in one transaction; returns the new entries' indices.

        Entries signed together (`EntrySigner.sign_batch`) must come complete, in order and
        next to each other; their one signature is checked once. Raises `SignatureError`
        (naming the position in `entries`) if any signature is unknown, foreign or invalid,
        or a batch is incomplete or altered; then nothing is stored.
        """
        verify_entries(entries, self._keys)
        return self._store(entries)

    def _store(self, entries: Sequence[SignedEntry]) -> list[int]:
        items = []
        for signed in entries:
            entry = signed.entry
            items.append(
                (signed.body, entry.type.value, entry.actor, entry.node, entry.project, entry.time)
            )
        return self._store_items(items)

    def _store_items(
        self, items: Sequence[tuple[bytes, str, str, str | None, str | None, str]]
    ) -> list[int]:
        """Store (body, type, actor, node, project, time) rows whose signatures were checked."""
        if not items:
            return []
        with self._engine.begin() as conn:
            # Writing the head first takes the write lock before anything is read.
            conn.execute(_GROW, {"grow": len(items)})
            new_size = int(conn.execute(_HEAD_SIZE).scalar_one())
            old_size = new_size - len(items)
            frontier = self._frontier(conn, old_size)
            append = frontier.append
            sha = _sha256
            rows = [
                (idx, leaf, b"".join(append(leaf)), body, type_, actor, node, project, time_)
                for idx, (body, type_, actor, node, project, time_) in enumerate(items, old_size)
                for leaf in (sha(b"\x00" + body).digest(),)
            ]
            for start in range(0, len(rows), _BATCH_ROWS):
                _insert_entries(conn, rows[start : start + _BATCH_ROWS])
        self._tip = frontier  # committed
        return list(range(old_size, new_size))

    def _frontier(self, conn: Connection, size: int) -> Frontier:
        tip = self._tip
        if tip is not None and tip.size == size:
            return Frontier(size, tip.hashes)  # a copy: the append may yet roll back
        nodes = frontier_nodes(size)
        found = _Nodes(conn, size).node_hashes(nodes)
        return Frontier(size, [found[node] for node in nodes])

    def entry(self, index: int) -> LoggedEntry:
        """The entry at `index`; raises `EntryNotFound`."""
        t = tables.entries
        with self._engine.connect() as conn:
            row = conn.execute(
                select(t.c.idx, t.c.body, t.c.leaf_hash).where(t.c.idx == index)
            ).one_or_none()
        if row is None:
            raise EntryNotFound(f"the log has no entry {index}; its size is {self.size()}")
        return LoggedEntry(row.idx, SignedEntry.from_bytes(bytes(row.body)), bytes(row.leaf_hash))

    def batch_proof(self, index: int) -> list[bytes]:
        """The RFC 9162 inclusion proof of entry `index` in the batch tree its actor signed
        (empty for an entry signed alone): with it, `keys.verify_entry` checks that one
        entry. Raises `EntryNotFound`, or `LogStateError` when the batch's rows are damaged."""
        batch = self.entry(index).signed.batch
        if batch is None:
            return []
        start = index - batch.index
        members = [logged.signed for logged in self.entries(start=start, limit=batch.size)]
        if [m.batch for m in members] != [
            BatchRef(k, batch.size, batch.root) for k in range(batch.size)
        ]:
            raise LogStateError(
                f"the batch of entry {index} is not stored whole and in order; the log's "
                "tables are damaged: run `medspace audit verify`"
            )
        return batch_proof([m.entry.canonical() for m in members], batch.index)

    def entries(
        self,
        *,
        project: str | None = None,
        type: EntryType | str | None = None,
        actor: str | None = None,
        node: str | None = None,
        start: int = 0,
        limit: int | None = None,
    ) -> Iterator[LoggedEntry]:
        """Entries in log order from `start`, optionally filtered; streams in batches."""
        t = tables.entries
        query = select(t.c.idx, t.c.body, t.c.leaf_hash).where(t.c.idx >= start)
        for column, value in (
            (t.c.project, project),
            (t.c.type, None if type is None else EntryType(type).value),
            (t.c.actor, actor),
            (t.c.node, node),
        ):
            if value is not None:
                query = query.where(column == value)
        query = query.order_by(t.c.idx)
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as conn:
            result = conn.execution_options(yield_per=1000).execute(query)
            for row in result:
                body = bytes(row.body)
                yield LoggedEntry(row.idx, SignedEntry.from_bytes(body), bytes(row.leaf_hash))

    def root(self, size: int | None = None) -> bytes:
        """The RFC 9162 root of the first `size` entries (default: all)."""
        with self._engine.connect() as conn:
            current = self._size(conn)
            size = current if size is None else size
            if not 0 <= size <= current:
                raise ProofError(f"the log has {current} entries, not {size}")
            return root_hash(size, _Nodes(conn, current))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Proof that entry `index` is in the tree of `size` entries (default: all)."""
        with self._engine.connect() as conn:
            current = self._size(conn)
            size = current if size is None else size
            if size > current:
                raise ProofError(f"the log has {current} entries, not {size}")
            return inclusion_proof(index, size, _Nodes(conn, current))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Proof that the tree of `new_size` entries extends the tree of `old_size`."""
        with self._engine.connect() as conn:
            current = self._size(conn)
            new_size = current if new_size is None else new_size
            if new_size > current:
                raise ProofError(f"the log has {current} entries, not {new_size}")
            return consistency_proof(old_size, new_size, _Nodes(conn, current))

    @staticmethod
    def _size(conn: Connection) -> int:
        return int(conn.execute(select(tables.head.c.size)).scalar_one())

    def checkpoint(self, signer: NoteSigner) -> SignedCheckpoint:
        """Sign and store a checkpoint of the current size (or return the stored one when
        the size has not changed). Cheap: the hub calls it at least once a second while
        entries arrive."""
        if signer.name != self.origin:
            raise CheckpointError("the log key's name must be the log origin")
        with self._engine.begin() as conn:
            size = self._size(conn)
            stored = self._checkpoint_row(conn, size)
            if stored is not None:
                return stored
            root = root_hash(size, _Nodes(conn, size))
            signed = sign_checkpoint(Checkpoint(self.origin, size, root), signer)
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(tables.checkpoints).values(
                            size=size, root=root, note=signed.to_text()
                        )
                    )
            except exc.IntegrityError:
                stored = self._checkpoint_row(conn, size)
                if stored is None:
                    raise
                return stored
            return signed

    def _checkpoint_row(self, conn: Connection, size: int) -> SignedCheckpoint | None:
        note = conn.execute(
            select(tables.checkpoints.c.note).where(tables.checkpoints.c.size == size)
        ).scalar_one_or_none()
        if note is None:
            return None
        signed = SignedCheckpoint.from_text(note)
        c = tables.cosignatures.c
        lines = conn.execute(select(c.line).where(c.size == size).order_by(c.witness)).scalars()
        extra = [NoteSignature.from_line(line.rstrip("\n")) for line in lines]
        return SignedCheckpoint(
            signed.checkpoint, Note(signed.note.text, signed.note.signatures + tuple(extra))
        )

    def checkpoint_at(self, size: int) -> SignedCheckpoint:
        """The stored checkpoint at `size` with its cosignatures; raises `EntryNotFound`."""
        with self._engine.connect() as conn:
            signed = self._checkpoint_row(conn, size)
        if signed is None:
            raise EntryNotFound(f"the log has no checkpoint at size {size}")
        return signed

    def checkpoint_sizes(self) -> list[int]:
        """Sizes of all stored checkpoints, ascending."""
        c = tables.checkpoints.c
        with self._engine.connect() as conn:
            return [int(s) for s in conn.execute(select(c.size).order_by(c.size)).scalars()]

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        """The newest stored checkpoint with its cosignatures, if any."""
        with self._engine.connect() as conn:
            size = conn.execute(select(func.max(tables.checkpoints.c.size))).scalar_one()
            return None if size is None else self._checkpoint_row(conn, int(size))

    def final_checkpoint(self, quorum: Quorum) -> SignedCheckpoint | None:
        """The newest stored checkpoint that `quorum` deems final, if any."""
        for size in reversed(self.checkpoint_sizes()):
            signed = self.checkpoint_at(size)
            if quorum.is_final(signed):
                return signed
        return None

    def add_cosignature(
        self, size: int, cosignature: Cosignature, witness: CosignatureVerifier
    ) -> None:
        """Verify a witness's cosignature on the checkpoint at `size` and store it (a
        witness's first cosignature on a checkpoint is kept)."""
        signed = self.checkpoint_at(size)
        witness.verify(signed.checkpoint, cosignature)
        c = tables.cosignatures.c
        with self._engine.begin() as conn:
            exists = conn.execute(
                select(c.size).where(c.size == size, c.witness == witness.name)
            ).first()
            if exists is None:
                conn.execute(
                    insert(tables.cosignatures).values(
                        size=size, witness=witness.name, line=cosignature.line()
                    )
                )
