"""`audit_verify` on several processes: aligned chunks of the entries table, re-checked by
workers and joined here.

The log is cut into chunks of 2**height leaves starting at multiples of 2**height, so every
tree node up to that height lies inside one chunk. A worker opens the database itself
(by URL), reads its chunk, and checks there what needs no other chunk: leaf hashes, the
stored interior nodes up to `height`, lookup columns and signatures (a batch that starts
in the chunk is finished by reading on; leading members of a batch begun before the chunk
are left to the previous worker). It hands back the chunk's root and the frontier at each
size the auditor wants a root for; `verify.py` joins the chunks above `height`.

A chunk whose rows are not exactly the indices asked for is reported `regular=False`
without further work: `audit_verify` then re-checks the log in one ordered pass, which
names every gap, duplicate or moved row.
"""

from __future__ import annotations

import functools
import hashlib
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, create_engine, func, select

from medspace.ledger import tables
from medspace.ledger._bodies import (
    _BATCH_HEAD,
    Problem,
    SignatureChecker,
    SignatureJob,
    check_jobs,
    columns_match,
)
from medspace.ledger.compact import Frontier
from medspace.ledger.keys import KeyResolver, KeyRing
from medspace.ledger.merkle import EMPTY_ROOT, HASH_SIZE, fold

_COLUMNS_DIFFER = "lookup columns (type, actor, node, project, time) do not match its content"
_JOBS_PER_TASK = 2000
_engines: dict[str, Engine] = {}
_sha256 = hashlib.sha256


@dataclass
class ChunkReport:
    """What one worker found in entries [start, stop)."""

    start: int
    stop: int
    regular: bool
    problems: list[Problem] = field(default_factory=list)
    frontiers: dict[int, list[bytes]] = field(default_factory=dict)
    root: bytes = b""
    last_nodes: bytes = b""
    last_stored: bytes = b""
    lead: int = 0
    overhang: int = 0
    deferred: list[SignatureJob] = field(default_factory=list)
    checked: int = 0


def _engine(url: str) -> Engine:
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = create_engine(url)
    return engine


def _rows(engine: Engine, start: int, stop: int) -> list[tuple[Any, ...]]:
    t = tables.entries
    query = (
        select(
            t.c.idx,
            t.c.body,
            t.c.leaf_hash,
            t.c.nodes,
            t.c.type,
            t.c.actor,
            t.c.node,
            t.c.project,
            t.c.time,
        )
        .where(t.c.idx >= start, t.c.idx < stop)
        .order_by(t.c.idx)
    )
    # Straight from the driver's cursor: plain tuples, no per-row result processing (the
    # columns are bytes, str and int as stored).
    compiled = query.compile(dialect=engine.dialect)
    params = compiled.params
    args = (
        tuple(params[name] for name in compiled.positiontup or ())
        if compiled.positional
        else params
    )
    with engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(str(compiled), args)
            return list(cursor.fetchall())
        finally:
            cursor.close()


def _ones(n: int) -> int:
    """Number of trailing one bits of n: how many nodes leaf n completes."""
    return ((n ^ (n + 1)).bit_length()) - 1


@functools.cache
def _lengths(count: int) -> list[int]:
    """Stored node-blob lengths of the rows of a chunk of `count` leaves."""
    return [_ones(k) * HASH_SIZE for k in range(count)]


def _frontier(levels: list[list[bytes]], size: int) -> list[bytes]:
    """The perfect nodes covering the chunk's first `size` leaves, largest first."""
    hashes: list[bytes] = []
    position = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            hashes.append(levels[level][position >> level])
            position += 1 << level
    return hashes


def scan_chunk(
    url: str,
    start: int,
    stop: int,
    height: int,
    wanted: list[int],
    signatures_from: int,
    keys: dict[str, tuple[str, bytes]],
) -> ChunkReport:
    """Check entries [start, stop) of the log at `url` (see the module docstring).
    `wanted` are the sizes in (start, stop] whose frontier the caller needs; signatures
    are checked for entries from `signatures_from`; `keys` maps key ids to (principal, raw
    public key), and jobs for other keys come back `deferred`."""
    engine = _engine(url)
    rows = _rows(engine, start, stop)
    report = ChunkReport(start, stop, regular=False)
    if [row[0] for row in rows] != list(range(start, stop)):
        return report
    bodies = [row[1] for row in rows]
    if any(type(body) is not bytes for body in bodies):
        return report
    report.regular = True
    problems = report.problems
    sha = _sha256
    leaves = [sha(b"\x00" + body).digest() for body in bodies]
    if leaves != [row[2] for row in rows]:
        for idx, leaf, row in zip(range(start, stop), leaves, rows, strict=True):
            if leaf != row[2]:
                problems.append((idx, "leaf hash does not match its content"))

    # Every perfect node inside the chunk, level by level. The append stored node (L, k)
    # in the row of its last leaf, (k + 1) * 2**L - 1, at offset (L - 1) * 32; so each
    # row holds as many nodes as its index has trailing one bits. Compare level by level
    # (slices in C), and the blob lengths against that pattern; look row by row only when
    # something differs.
    count = stop - start
    levels = [leaves]
    stored = [row[3] for row in rows]
    full = count == 1 << height
    last = stored[-1]
    if full:
        stored[-1] = last[: height * HASH_SIZE] if type(last) is bytes else last
    same = [len(blob) if type(blob) is bytes else -1 for blob in stored] == _lengths(count)
    level, hashes = 0, leaves
    while len(hashes) > 1:
        hashes = [
            sha(b"\x01" + a + b).digest() for a, b in zip(hashes[::2], hashes[1::2], strict=False)
        ]
        level += 1
        levels.append(hashes)
        if same:
            low, high = (level - 1) * HASH_SIZE, level * HASH_SIZE
            same = [blob[low:high] for blob in stored[(1 << level) - 1 :: 1 << level]] == hashes
    if full:
        report.root = levels[height][0]
        report.last_nodes, report.last_stored = (
            b"".join(levels[level][-1] for level in range(1, height + 1)),
            last,
        )
    if not same:
        for idx, theirs in zip(range(start, stop), stored, strict=True):
            mine = b"".join(
                levels[level][(idx - start) >> level]
                for level in range(1, _ones(idx - start) + 1)
                if (idx - start) >> level < len(levels[level])
            )
            if not (full and idx == stop - 1) and mine != theirs:
                problems.append((idx, "stored tree nodes do not match the entries"))
    for size in wanted:
        report.frontiers[size] = _frontier(levels, size - start)

    for idx, body, row in zip(range(start, stop), bodies, rows, strict=True):
        if not columns_match(body, row[4], row[5], row[6], row[7], row[8]):
            problems.append((idx, _COLUMNS_DIFFER))

    first = max(start, signatures_from)
    if first < stop:
        signing = [(row[0], row[1], row[5]) for row in rows[first - start :]]
        if first == start and start > 0:
            # Members of a batch begun in the chunk before belong to its worker.
            while report.lead < len(signing):
                head = _BATCH_HEAD.match(signing[report.lead][1])
                if head is None or int(head[1]) == 0:
                    break
                report.lead += 1
        checker = SignatureChecker(keys, defer_unknown=True)
        checker.feed(signing[report.lead :])
        if checker.needs:
            more = _rows(engine, stop, stop + checker.needs)
            report.overhang = checker.continue_batch(
                [(row[0], row[1], row[5]) for row in more if type(row[1]) is bytes]
            )
        checker.finish()
        problems.extend(checker.problems)
        report.deferred = checker.deferred
        report.checked = checker.checked
    return report


@dataclass
class ScanResult:
    """The joined outcome of all chunks."""

    roots: dict[int, bytes]
    count: int
    checked: int
    problems: list[Problem]


def scan_in_chunks(
    engine: Engine,
    keys: KeyResolver,
    wanted: set[int],
    signatures_from: int,
    total: int,
    workers: int,
    height: int,
    progress: Callable[[int, int], None] | None = None,
) -> ScanResult | None:
    """Check the entries in chunks on `workers` processes and join them (roots, interior
    nodes above `height`, batches across chunk edges). None when the table's shape is not
    exactly indices 0..total-1 (or the database is in memory): the caller then runs the
    ordered single pass, which names each irregularity."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return None
    # No index below 0 or at or above `total` (each chunk then checks that it holds
    # exactly its indices). Two queries: each is one index lookup, together a full scan.
    t = tables.entries
    with engine.connect() as conn:
        low = conn.execute(select(func.min(t.c.idx))).scalar()
        high = conn.execute(select(func.max(t.c.idx))).scalar()
    if (low, high) != ((0, total - 1) if total else (None, None)):
        return None
    snapshot = (
        {key.key_id: (key.principal, key.raw) for key in keys} if isinstance(keys, KeyRing) else {}
    )
    address = url.render_as_string(hide_password=False)
    step = 1 << height
    roots = {0: EMPTY_ROOT} if 0 in wanted else {}
    problems: list[Problem] = []
    deferred: list[SignatureJob] = []
    top = Frontier()  # the tree above the chunks: one leaf per chunk root
    checked, overhang = 0, 0
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [
            pool.submit(
                scan_chunk,
                address,
                start,
                min(start + step, total),
                height,
                sorted(s for s in wanted if start < s <= min(start + step, total)),
                signatures_from,
                snapshot,
            )
            for start in range(0, total, step)
        ]
        try:
            for future in futures:
                report = future.result()
                if not report.regular or report.lead != overhang:
                    return None
                overhang = report.overhang
                problems.extend(report.problems)
                deferred.extend(report.deferred)
                checked += report.checked
                for size, local in report.frontiers.items():
                    roots[size] = fold(top.hashes + local)
                if report.root:
                    upper = b"".join(top.append(report.root))
                    if report.last_nodes + upper != report.last_stored:
                        problems.append(
                            (report.stop - 1, "stored tree nodes do not match the entries")
                        )
                if progress is not None:
                    progress(report.stop, total)
        finally:
            for future in futures:
                future.cancel()
        if deferred:
            found, n = _check_deferred(pool, deferred, keys)
            problems.extend(found)
            checked += n
    return ScanResult(roots, total, checked, problems)


def _check_deferred(
    pool: ProcessPoolExecutor, jobs: list[SignatureJob], keys: KeyResolver
) -> tuple[list[Problem], int]:
    """Signature jobs whose keys only `keys.resolve` knows: resolve here, verify in the pool."""
    resolved: dict[str, tuple[str, bytes]] = {}
    for key_id in {job[2] for job in jobs}:
        key = keys.resolve(key_id)
        if key is not None:
            resolved[key_id] = (key.principal, key.raw)
    futures = [
        pool.submit(check_jobs, jobs[k : k + _JOBS_PER_TASK], resolved)
        for k in range(0, len(jobs), _JOBS_PER_TASK)
    ]
    problems: list[Problem] = []
    checked = 0
    for future in futures:
        found, n = future.result()
        problems.extend(found)
        checked += n
    return problems, checked
