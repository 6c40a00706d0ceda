"""`audit verify`: re-check a whole log from its tables and report a verdict.

Re-hashes every entry, rebuilds the tree and compares every stored leaf and interior node,
checks every entry's signature and lookup columns, every checkpoint's root, log signature
and cosignatures, consistency proofs between consecutive checkpoints, and (optionally)
checkpoints that witnesses hold. Tampering is never raised: it is a `Finding`.

A batch of entries signed together is checked once, whole (see `batch.py`); entries
signed alone cost one Ed25519 verification each. With `workers` > 1 the entries are
checked in aligned chunks by worker processes that read the database themselves
(`_scan.py`); a table whose rows are not exactly 0..size-1 is then re-checked here in one
ordered pass, which names every gap. An auditor that verified the log before may pass the
`TrustedHead` it got back: entries under it are then re-hashed (which proves them
unchanged, since their root must match) but their signatures are not verified again.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise

from sqlalchemy import Connection, Engine, exc, select

from medspace.ledger import tables
from medspace.ledger._bodies import (
    SignatureRow,
    batch_end,
    check_signatures,
    columns_match,
    key_id_of,
)
from medspace.ledger._scan import scan_in_chunks
from medspace.ledger.checkpoint import SignedCheckpoint
from medspace.ledger.compact import Frontier
from medspace.ledger.errors import CheckpointError, LedgerError
from medspace.ledger.keys import KeyResolver
from medspace.ledger.log import _Nodes
from medspace.ledger.merkle import EMPTY_ROOT, consistency_proof, verify_consistency
from medspace.ledger.note import Note, NoteSignature, NoteVerifier
from medspace.ledger.witness import Quorum

_CHUNK = 10_000
_CHUNK_HEIGHT = 16  # workers > 1: chunks of 2**16 entries per worker task
_COLUMNS_DIFFER = "lookup columns (type, actor, node, project, time) do not match its content"
_sha256 = hashlib.sha256
_FIRST = {
    "leaf hash does not match its content": 0,
    "stored tree nodes do not match the entries": 1,
    _COLUMNS_DIFFER: 2,
}


def _finding_order(finding: Finding) -> tuple[int, int]:
    rank = -1 if finding.problem.startswith("missing") else _FIRST.get(finding.problem, 3)
    return int(finding.subject.removeprefix("entry ")), rank


@dataclass(frozen=True)
class Finding:
    """One problem: where (`entry 12`, `checkpoint at size 900`, `log`) and what."""

    subject: str
    problem: str
    severity: str = "error"  # "error": the log is not trustworthy; "warning": not yet final

    def __str__(self) -> str:
        return f"{self.subject}: {self.problem}"


@dataclass(frozen=True)
class TrustedHead:
    """A tree head an auditor verified completely before (size and root)."""

    size: int
    root: bytes


@dataclass(frozen=True)
class Verdict:
    """The outcome of `audit_verify`."""

    ok: bool
    entries: int
    checkpoints: int
    final_size: int | None
    signatures_checked: int
    findings: tuple[Finding, ...]
    findings_omitted: int = 0
    trusted_head: TrustedHead | None = None
    seconds: float = field(default=0.0, compare=False)

    def summary(self) -> str:
        """One line for humans."""
        errors = sum(1 for f in self.findings if f.severity == "error") + self.findings_omitted
        final = "none" if self.final_size is None else f"size {self.final_size}"
        head = "VERIFIED" if self.ok else f"FAILED ({errors} problems)"
        return (
            f"{head}: {self.entries} entries, {self.checkpoints} checkpoints, newest final "
            f"checkpoint {final}, {self.signatures_checked} entry signatures checked"
        )


class _Findings:
    def __init__(self, limit: int) -> None:
        self.items: list[Finding] = []
        self.omitted = 0
        self._limit = limit

    def add(self, subject: str, problem: str, severity: str = "error") -> None:
        if len(self.items) < self._limit:
            self.items.append(Finding(subject, problem, severity))
        else:
            self.omitted += 1

    @property
    def errors(self) -> int:
        return sum(1 for f in self.items if f.severity == "error") + self.omitted


@dataclass
class _Checkpoints:
    signed: dict[int, SignedCheckpoint]
    final: set[int]


def _load_checkpoints(
    conn: Connection, log_key: NoteVerifier, quorum: Quorum, findings: _Findings
) -> _Checkpoints:
    c, s = tables.checkpoints.c, tables.cosignatures.c
    lines: dict[int, list[str]] = {}
    for size, line in conn.execute(select(s.size, s.line).order_by(s.size, s.witness)):
        lines.setdefault(int(size), []).append(line)
    result = _Checkpoints({}, set())
    rows = conn.execute(select(c.size, c.root, c.note).order_by(c.size))
    for size, root, note in rows:
        subject = f"checkpoint at size {size}"
        try:
            signed = SignedCheckpoint.from_text(note)
            extra = tuple(
                NoteSignature.from_line(line.rstrip("\n")) for line in lines.get(size, [])
            )
            signed = SignedCheckpoint(
                signed.checkpoint, Note(signed.note.text, signed.note.signatures + extra)
            )
            signed.verify(log_key)
        except CheckpointError as error:
            findings.add(subject, f"note or log signature is invalid ({error})")
            continue
        if signed.checkpoint.size != size or bytes(root) != signed.checkpoint.root:
            findings.add(subject, "stored size or root differs from the signed note")
        valid, invalid = quorum.tally(signed)
        if invalid:
            findings.add(subject, f"cosignatures that do not verify, from {', '.join(invalid)}")
        elif len(valid) >= quorum.threshold:
            result.final.add(size)
        result.signed[size] = signed
    return result


def audit_verify(
    engine: Engine,
    *,
    keys: KeyResolver,
    log_key: NoteVerifier,
    quorum: Quorum,
    trusted: TrustedHead | None = None,
    witnessed: Iterable[SignedCheckpoint] = (),
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    max_findings: int = 1000,
) -> Verdict:
    """Verify the log in `engine` completely; see the module docstring for what is checked.

    `keys` resolves entry signers, `log_key` is the log's checkpoint key, `quorum` the
    witnesses and threshold that make a checkpoint final; `witnessed` are checkpoints
    taken from witnesses' state (a fork or rewrite shows up as a mismatch with them).
    """
    started = time.perf_counter()
    findings = _Findings(max_findings)
    try:
        with engine.connect() as conn:
            head = conn.execute(select(tables.head.c.origin, tables.head.c.size)).one_or_none()
    except exc.DBAPIError:
        head = None
    if head is None:
        findings.add("log", "the ledger tables are missing or unreadable")
        return Verdict(False, 0, 0, None, 0, tuple(findings.items))
    if head.origin != log_key.name:
        findings.add("log", "its origin does not match the log key's name")
    witnessed = list(witnessed)
    with engine.connect() as conn:
        cps = _load_checkpoints(conn, log_key, quorum, findings)
        wanted = set(cps.signed) | {w.checkpoint.size for w in witnessed}
        if trusted is not None:
            wanted.add(trusted.size)
        signatures_from = 0 if trusted is None else trusted.size
        scanned_from = len(findings.items)
        chunked = None
        if workers > 1:
            chunked = scan_in_chunks(
                engine,
                keys,
                wanted,
                signatures_from,
                int(head.size),
                workers,
                _CHUNK_HEIGHT,
                progress,
            )
        if chunked is None:
            roots, count, checked = _scan_entries(
                conn, keys, wanted, signatures_from, int(head.size), findings, workers, progress
            )
        else:
            roots, count, checked = chunked.roots, chunked.count, chunked.checked
            for idx, problem in chunked.problems:
                findings.add(f"entry {idx}", problem)
        # Entry findings in one order however they were found: by entry, hashes first.
        findings.items[scanned_from:] = sorted(findings.items[scanned_from:], key=_finding_order)
        if head.size != count:
            findings.add("log", f"its head says {head.size} entries but {count} are stored")
        for size, signed in cps.signed.items():
            if size > count:
                findings.add(
                    f"checkpoint at size {size}",
                    f"covers more entries than the {count} stored: entries were deleted",
                )
            elif roots.get(size) != signed.checkpoint.root:
                findings.add(f"checkpoint at size {size}", "root does not match the entries")
        _check_consistency(conn, sorted(cps.final), cps, count, findings)
    for signed in witnessed:
        _check_witnessed(signed, log_key, roots, count, findings)
    if trusted is not None and roots.get(trusted.size) != trusted.root:
        findings.add(
            "trusted head",
            f"the entries no longer lead to the root verified before at size {trusted.size}; "
            "signatures below it were not re-checked: run a full audit without a trusted head",
        )
    final_size = max(cps.final) if cps.final else None
    if count and (final_size is None or final_size < count):
        first = 0 if final_size is None else final_size
        findings.add(
            "log",
            f"entries {first}..{count - 1} are not yet covered by a final checkpoint",
            "warning",
        )
    ok = findings.errors == 0
    trusted_head = (
        TrustedHead(final_size, roots[final_size]) if ok and final_size is not None else None
    )
    return Verdict(
        ok=ok,
        entries=count,
        checkpoints=len(cps.signed),
        final_size=final_size,
        signatures_checked=checked,
        findings=tuple(findings.items),
        findings_omitted=findings.omitted,
        trusted_head=trusted_head,
        seconds=time.perf_counter() - started,
    )


def _scan_entries(
    conn: Connection,
    keys: KeyResolver,
    wanted: set[int],
    signatures_from: int,
    total: int,
    findings: _Findings,
    workers: int,
    progress: Callable[[int, int], None] | None,
) -> tuple[dict[int, bytes], int, int]:
    """Stream the entries in index order: hash, rebuild the tree, compare stored hashes and
    lookup columns; check signatures (inline, or in worker processes when `workers` > 1)."""
    roots: dict[int, bytes] = {0: EMPTY_ROOT} if 0 in wanted else {}
    resolved: dict[str, tuple[str, bytes] | None] = {}
    frontier = Frontier()
    pool: ProcessPoolExecutor | None = None
    pending: deque[Future[tuple[list[tuple[int, str]], int]]] = deque()
    checked = 0

    def report(outcome: tuple[list[tuple[int, str]], int]) -> None:
        nonlocal checked
        problems, n = outcome
        checked += n
        for idx, problem in problems:
            findings.add(f"entry {idx}", problem)

    t = tables.entries
    query = select(
        t.c.idx,
        t.c.body,
        t.c.leaf_hash,
        t.c.nodes,
        t.c.type,
        t.c.actor,
        t.c.node,
        t.c.project,
        t.c.time,
    ).order_by(t.c.idx)
    expected = 0
    sha = _sha256
    append = frontier.append
    carry: list[SignatureRow] = []  # members of a batch that goes on in the next partition

    def check(signing: list[SignatureRow]) -> None:
        nonlocal pool
        keyring = _keys_for(signing, keys, resolved)
        if workers <= 1:
            report(check_signatures(signing, keyring))
            return
        if pool is None:
            context = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(workers, mp_context=context)
        pending.append(pool.submit(check_signatures, signing, keyring))
        while len(pending) > 2 * workers:
            report(pending.popleft().result())

    try:
        result = conn.execution_options(yield_per=_CHUNK).execute(query)
        for partition in result.partitions():
            signing, carry = carry, []
            for (
                idx,
                raw,
                stored_leaf,
                stored_nodes,
                type_,
                actor,
                node,
                project,
                time_,
            ) in partition:
                if idx != expected:
                    if idx > expected:
                        findings.add(f"entry {expected}", f"missing (next stored: {idx})")
                    expected = idx
                expected += 1
                body = raw if type(raw) is bytes else _blob(raw)
                if body is None:
                    findings.add(f"entry {idx}", "stored body is not binary data")
                    body = str(raw).encode("utf-8", "replace")
                leaf = sha(b"\x00" + body).digest()
                if leaf != stored_leaf:
                    findings.add(f"entry {idx}", "leaf hash does not match its content")
                nodes = append(leaf)
                if (nodes[0] if len(nodes) == 1 else b"".join(nodes)) != stored_nodes:
                    findings.add(f"entry {idx}", "stored tree nodes do not match the entries")
                if frontier.size in wanted:
                    roots[frontier.size] = frontier.root()
                if not columns_match(body, type_, actor, node, project, time_):
                    findings.add(
                        f"entry {idx}",
                        _COLUMNS_DIFFER,
                    )
                if idx >= signatures_from:
                    signing.append((idx, body, actor))
            cut = batch_end(signing)
            signing, carry = signing[:cut], signing[cut:]
            if signing:
                check(signing)
            if progress is not None:
                progress(frontier.size, total)
        if carry:
            check(carry)  # a batch the log ends inside of: reported as cut short
        while pending:
            report(pending.popleft().result())
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return roots, frontier.size, checked


def _blob(value: object) -> bytes | None:
    """Column data as bytes; None when a tampered row holds another type."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return None


def _keys_for(
    rows: list[SignatureRow], keys: KeyResolver, resolved: dict[str, tuple[str, bytes] | None]
) -> dict[str, tuple[str, bytes]]:
    found: dict[str, tuple[str, bytes]] = {}
    for row in rows:
        key_id = key_id_of(row[1])
        if key_id is None or key_id in found:
            continue
        if key_id not in resolved:
            key = keys.resolve(key_id)
            resolved[key_id] = None if key is None else (key.principal, key.raw)
        known = resolved[key_id]
        if known is not None:
            found[key_id] = known
    return found


def _check_consistency(
    conn: Connection, sizes: list[int], cps: _Checkpoints, count: int, findings: _Findings
) -> None:
    """Consistency proofs, served from the stored nodes, between consecutive final
    checkpoints (a second, independent path to the same conclusion as the roots)."""
    reader = _Nodes(conn, count)
    sizes = [s for s in sizes if s <= count]
    for old, new in pairwise(sizes):
        try:
            proof = consistency_proof(old, new, reader)
            verify_consistency(
                old, new, cps.signed[old].checkpoint.root, cps.signed[new].checkpoint.root, proof
            )
        except LedgerError as error:
            findings.add(f"checkpoint at size {new}", f"not consistent with size {old} ({error})")


def _check_witnessed(
    signed: SignedCheckpoint,
    log_key: NoteVerifier,
    roots: dict[int, bytes],
    count: int,
    findings: _Findings,
) -> None:
    size = signed.checkpoint.size
    subject = f"witnessed checkpoint at size {size}"
    try:
        signed.verify(log_key)
    except CheckpointError as error:
        findings.add(subject, f"is not signed by this log ({error})")
        return
    if size > count:
        findings.add(subject, f"the log now holds only {count} entries: entries were deleted")
    elif roots.get(size) != signed.checkpoint.root:
        findings.add(
            subject,
            "fork: a witness cosigned another root at this size; the log was rewritten or "
            "showed different histories",
        )
