"""Ledger benchmark: appends, checkpoint finality with 5 witnesses, proofs, audit verify.

Everything runs on real SQLite files, configured as the hub configures its database (WAL,
synchronous=NORMAL: `medspace.hub.db.make_hub_engine`), with real Ed25519 signatures.
Actors sign their entries in batches (`EntrySigner.sign_batch`, BATCH entries per
signature) unless a metric says otherwise. The 1M-entry log used by the proof and audit
metrics is built once (entries signed in worker processes, stored through the log's own
storage step: their signatures are checked by the audit itself) and kept in bench/data/
(git-ignored); delete bench/data/ledger-*.db to rebuild it. Set
MEDSPACE_BENCH_LEDGER_ENTRIES for a smaller log. Nothing here asserts speed.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench._metrics import metric
from medspace.hub.db import make_hub_engine
from medspace.ledger import (
    Cosigner,
    Entry,
    EntrySigner,
    GroupCommit,
    KeyRing,
    Log,
    NoteSigner,
    Quorum,
    SignedEntry,
    Witness,
    audit_verify,
    leaf_hash,
    request_cosignature,
    verify_entries,
    verify_entry,
    verify_inclusion,
)

ORIGIN = "bench.medspace/ledger"
NODES = ("h1", "h2", "h3", "h4", "h5")
TYPES = ("request", "approval", "task", "access", "compute", "result", "export", "lookup")
AUDIT_ENTRIES = int(os.environ.get("MEDSPACE_BENCH_LEDGER_ENTRIES", "1000000"))
CHECKPOINT_EVERY = 100_000
DATA = Path(__file__).resolve().parent / "data"
FORMAT = 3  # bump when the stored layout changes, so a stale cached log is rebuilt
BATCH = 1000  # entries per batch signature in the cached log
APPEND_BATCH = 200  # entries per batch signature in the append metrics (5 actors per append)

# Values are written as measured, unrounded, as this suite has always done.
_metric = partial(metric, digits=None)


def _key(name: str) -> Ed25519PrivateKey:
    """Deterministic bench-only keys, so a cached log stays verifiable across runs."""
    return Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(b"medspace-bench/" + name.encode()).digest()
    )


def _ring() -> KeyRing:
    ring = KeyRing()
    for node in NODES:
        ring.add(node, _key(node).public_key())
    return ring


def _entry(n: int) -> Entry:
    node = NODES[n % len(NODES)]
    seconds = n // 1000
    return Entry(
        type=TYPES[n % len(TYPES)],
        actor=node,
        time=f"2025-{1 + seconds // 2_592_000 % 12:02d}-01T{seconds // 3600 % 24:02d}:"
        f"{seconds // 60 % 60:02d}:{seconds % 60:02d}.{n % 1_000_000:06d}Z",
        node=node,
        project=f"project-{n % 40}",
        artefacts={"query": "sha256:" + hashlib.sha256(n.to_bytes(8, "big")).hexdigest()},
        details={"purpose": "HRESCH", "count": n % 997},
    )


def _signed_batches(entries: list[Entry], size: int) -> list[SignedEntry]:
    """Each actor's entries (in order) signed in batches of `size`, actor after actor."""
    signers = {node: EntrySigner(_key(node)) for node in NODES}
    by_actor: dict[str, list[Entry]] = {}
    for entry in entries:
        by_actor.setdefault(entry.actor, []).append(entry)
    signed: list[SignedEntry] = []
    for actor, mine in by_actor.items():
        for k in range(0, len(mine), size):
            signed.extend(signers[actor].sign_batch(mine[k : k + size]))
    return signed


def _sign_range(start: int, stop: int) -> list[tuple[bytes, str, str, str | None, str | None, str]]:
    """Worker: sign entries [start, stop) in batches and return their storage rows."""
    rows = []
    for signed in _signed_batches([_entry(n) for n in range(start, stop)], BATCH):
        entry = signed.entry
        rows.append(
            (signed.body, entry.type.value, entry.actor, entry.node, entry.project, entry.time)
        )
    return rows


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the audit's workers)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def _witnesses(directory: Path, fresh: bool) -> tuple[list[Witness], Quorum]:
    log_key = NoteSigner(ORIGIN, _key("log")).verifier
    cosigners = [Cosigner(f"witness.{node}.bench", _key("witness-" + node)) for node in NODES]
    nodes = []
    for cosigner in cosigners:
        path = directory / f"{cosigner.name}.json"
        if fresh and path.exists():
            path.unlink()
        nodes.append(Witness(cosigner, [log_key], path))
    return nodes, Quorum([c.verifier for c in cosigners])


def _cosign_round(log: Log, signer: NoteSigner, witnesses: list[Witness], quorum: Quorum) -> bool:
    signed = log.checkpoint(signer)
    for w in witnesses:
        cosignature = request_cosignature(log, signed, w, w.latest_size(ORIGIN))
        log.add_cosignature(signed.checkpoint.size, cosignature, w.verifier)
    return quorum.is_final(log.checkpoint_at(signed.checkpoint.size))


def _small_log_metrics(tmp: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    ring = _ring()
    signers = {node: EntrySigner(_key(node)) for node in NODES}
    n = 20_000
    entries = [_entry(k) for k in range(n)]
    # Appends of 1000 entries each: five actors' batches of APPEND_BATCH, as a hub receives
    # them from several nodes at once.
    sign_s, signed = _timed(lambda: _signed_batches(entries, APPEND_BATCH))
    alone_n = 4000  # entries signed one by one, the way every entry was signed before
    alone_sign_s, alone = _timed(lambda: [signers[e.actor].sign(e) for e in entries[:alone_n]])
    check_s, _ = _timed(
        lambda: [verify_entries(signed[k : k + 1000], ring) for k in range(0, n, 1000)]
    )
    alone_check_s, _ = _timed(lambda: [verify_entry(s, ring) for s in alone])
    engine = make_hub_engine(f"sqlite:///{tmp / 'appends.db'}")
    log = Log.create(engine, ORIGIN, ring)
    batch = 1000
    cpu = _cpu_seconds()
    append_s, _ = _timed(lambda: [log.append(signed[k : k + batch]) for k in range(0, n, batch)])
    append_cpu = _cpu_seconds() - cpu
    alone_append_s, _ = _timed(
        lambda: [log.append(alone[k : k + batch]) for k in range(0, alone_n, batch)]
    )
    # The storage step alone (what append does after checking signatures), same batches.
    store_s, _ = _timed(lambda: [log._store(signed[k : k + batch]) for k in range(0, n, batch)])

    # Checkpoint finality: entries arrive, the hub checkpoints, 5 witnesses (in process,
    # state files fsynced) check consistency and cosign; final at 3 of 5.
    witnesses, quorum = _witnesses(tmp, fresh=True)
    signer = NoteSigner(ORIGIN, _key("log"))
    _cosign_round(log, signer, witnesses, quorum)
    rounds = []
    for r in range(30):
        log.append(signed[r * APPEND_BATCH : (r + 1) * APPEND_BATCH])  # one whole batch
        elapsed, final = _timed(lambda: _cosign_round(log, signer, witnesses, quorum))
        assert final, "a checkpoint cosigned by all witnesses must be final"
        rounds.append(elapsed)
    engine.dispose()
    metrics = [
        _metric(
            f"signed appends/s (appends of {batch}: 5 actors x batch signatures over "
            f"{APPEND_BATCH} entries; every signature and batch root checked on intake; "
            "one process)",
            n / append_s,
            "entries/s",
            target=">= 20000",
            anchor="Tessera 1,600-2,900 writes/s (12-core VM); Fabric in healthcare ~100 tx/s",
            met=n / append_s >= 20_000,
        ),
        _metric(
            "signed appends per CPU second (the same appends; wall rate on an idle core)",
            n / append_cpu,
            "entries/s",
        ),
        _metric(
            f"signed appends/s, every entry signed alone (appends of {batch}; for comparison)",
            alone_n / alone_append_s,
            "entries/s",
        ),
        _metric(
            "storage step alone (hash, frontier, insert; signatures checked beforehand)",
            n / store_s,
            "entries/s",
        ),
        _metric(
            f"intake checks, batch-signed entries ({APPEND_BATCH} per signature, one core)",
            n / check_s,
            "entries/s",
        ),
        _metric(
            "intake checks, entries signed alone (one core)", alone_n / alone_check_s, "entries/s"
        ),
        _metric(
            f"signing by an actor, batches of {APPEND_BATCH} (one core)", n / sign_s, "entries/s"
        ),
        _metric(
            "signing by an actor, entries alone (one core)", alone_n / alone_sign_s, "entries/s"
        ),
        _metric(
            "checkpoint final with 5 witnesses, median of 30 rounds",
            statistics.median(rounds) * 1000,
            "ms",
            target="<= 1000 ms",
            met=statistics.median(rounds) <= 1.0,
        ),
        _metric(
            "checkpoint final with 5 witnesses, slowest of 30 rounds",
            max(rounds) * 1000,
            "ms",
            target="<= 1000 ms",
            met=max(rounds) <= 1.0,
        ),
    ]
    return metrics, {
        "append_entries": n,
        "append_batch": batch,
        "append_signature_batch": APPEND_BATCH,
        "log_signature_batch": BATCH,
        "finality_rounds": 30,
        "witnesses": 5,
        "quorum": quorum.threshold,
    }


CONCURRENT_THREADS = 16
CONCURRENT_APPENDS = 2000  # of 2 entries each, one batch signature per append


def _concurrent_append_metrics(tmp: Path) -> list[dict[str, Any]]:
    """Small appends from many threads at once, as a hub's concurrent requests make them:
    one transaction per call behind a lock (what the hub did) against group commit
    (`GroupCommit`), side by side on fresh logs."""
    import concurrent.futures
    import threading

    ring = _ring()
    entries = [_entry(k) for k in range(2 * CONCURRENT_APPENDS)]
    signed = _signed_batches(entries, 2)
    calls = [signed[k : k + 2] for k in range(0, len(signed), 2)]

    def rate(name: str, wrap: Callable[[Log], Callable[[Any], Any]]) -> float:
        engine = make_hub_engine(f"sqlite:///{tmp / f'concurrent-{name}.db'}")
        log = Log.create(engine, ORIGIN, ring)
        append = wrap(log)
        with concurrent.futures.ThreadPoolExecutor(CONCURRENT_THREADS) as pool:
            seconds, _ = _timed(lambda: list(pool.map(append, calls)))
        assert log.size() == len(signed)
        engine.dispose()
        return len(signed) / seconds

    def one_each(log: Log) -> Callable[[Any], Any]:
        lock = threading.Lock()

        def append(batch: Any) -> Any:
            with lock:
                return log.append(batch)

        return append

    alone = rate("alone", one_each)
    grouped = rate("grouped", lambda log: GroupCommit(log.append).append)
    label = f"{CONCURRENT_THREADS} threads appending 2 entries each"
    return [
        _metric(f"{label}, one transaction per append", alone, "entries/s"),
        _metric(f"{label}, group commit (the hub's way)", grouped, "entries/s"),
        _metric(f"{label}: group commit / one transaction each", grouped / alone, "x"),
    ]


def _chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(total, start + size)


def _build_big_log(path: Path) -> float:
    """Sign AUDIT_ENTRIES entries in worker processes and store them, checkpointing and
    cosigning every CHECKPOINT_EVERY entries. Returns the seconds it took."""
    started = time.perf_counter()
    for stale in DATA.glob("ledger-*"):
        stale.unlink()
    engine = make_hub_engine(f"sqlite:///{path}")
    log = Log.create(engine, ORIGIN, _ring())
    witnesses, quorum = _witnesses(DATA, fresh=True)
    signer = NoteSigner(ORIGIN, _key("log"))
    workers = max(1, min(4, os.cpu_count() or 1))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(_sign_range, a, b) for a, b in _chunks(AUDIT_ENTRIES, 20_000)]
        for future in futures:
            log._store_items(future.result())
            if log.size() % CHECKPOINT_EVERY == 0 or log.size() == AUDIT_ENTRIES:
                _cosign_round(log, signer, witnesses, quorum)
    engine.dispose()
    return time.perf_counter() - started


def _big_log_metrics() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"ledger-{FORMAT}-{AUDIT_ENTRIES}.db"
    built_s = _build_big_log(path) if not path.exists() else None
    engine = make_hub_engine(f"sqlite:///{path}")
    ring = _ring()
    log = Log(engine, ring)
    size = log.size()
    witnesses, quorum = _witnesses(DATA, fresh=False)
    final = log.final_checkpoint(quorum)
    assert final is not None and final.checkpoint.size == size, "cached log is incomplete"

    # Inclusion proofs at the full size: from the database, then verified on their own.
    picks = [(k * 7_919_993) % size for k in range(200)]
    gen_s, proofs = _timed(lambda: [log.inclusion_proof(i, size) for i in picks])
    leaves = {i: log.entry(i).leaf_hash for i in picks}
    root = final.checkpoint.root

    def verify_all() -> None:
        for _ in range(5):
            for i, proof in zip(picks, proofs, strict=True):
                verify_inclusion(i, size, leaves[i], proof, root)

    verify_s, _ = _timed(verify_all)
    proof_bytes = statistics.mean(32 * len(p) for p in proofs)
    assert leaf_hash(log.entry(picks[0]).signed.body) == leaves[picks[0]]

    workers = max(1, os.cpu_count() or 1)
    options = {
        "keys": ring,
        "log_key": NoteSigner(ORIGIN, _key("log")).verifier,
        "quorum": quorum,
        "witnessed": [w.latest(ORIGIN) for w in witnesses],
    }
    cpu = _cpu_seconds()
    full = audit_verify(engine, workers=workers, **options)  # type: ignore[arg-type]
    full_cpu = _cpu_seconds() - cpu
    assert full.ok, full.findings
    cpu = _cpu_seconds()
    again = audit_verify(engine, workers=workers, trusted=full.trusted_head, **options)  # type: ignore[arg-type]
    again_cpu = _cpu_seconds() - cpu
    assert again.ok and again.signatures_checked == 0
    engine.dispose()
    million = size / 1_000_000
    metrics = [
        _metric(
            f"audit verify, {size:,} entries, every signature checked ({workers} workers)",
            full.seconds,
            "s",
            target="<= 10 s for 1M",
            met=full.seconds / million <= 10,
        ),
        _metric(
            f"audit verify, {size:,} entries, from a trusted head (re-hash, rebuild, "
            "columns, checkpoints; old signatures not re-checked)",
            again.seconds,
            "s",
            target="<= 10 s for 1M",
            met=again.seconds / million <= 10,
        ),
        _metric("audit verify throughput, full", size / full.seconds, "entries/s"),
        _metric(
            "audit verify, full: CPU seconds of the auditor and its workers (wall time on "
            f"{workers} idle cores is about this / {workers})",
            full_cpu,
            "s",
        ),
        _metric("audit verify, from a trusted head: CPU seconds (all processes)", again_cpu, "s"),
        _metric(f"inclusion proof size at {size:,} entries", float(proof_bytes), "bytes"),
        _metric("inclusion proof verify time", verify_s / (5 * len(picks)) * 1e6, "µs"),
        _metric("inclusion proof generation from the database", gen_s / len(picks) * 1000, "ms"),
    ]
    if built_s is not None:
        metrics.append(
            _metric(
                f"building the {size:,}-entry log (sign in workers + store + checkpoints)",
                built_s,
                "s",
            )
        )
    return metrics, {
        "audit_entries": size,
        "checkpoints": len(log.checkpoint_sizes()),
        "audit_workers": workers,
        "cached_log": built_s is None,
    }


def run() -> dict[str, Any]:
    """Run the ledger benchmark and return its result record."""
    with tempfile.TemporaryDirectory() as tmp:
        small, small_env = _small_log_metrics(Path(tmp))
        small += _concurrent_append_metrics(Path(tmp))
    big, big_env = _big_log_metrics()
    environment = {
        "database": "SQLite file (WAL, synchronous=NORMAL, as the hub opens it)",
        "signature": "Ed25519 (cryptography)",
        "load_average_1min": os.getloadavg()[0],
        **small_env,
        **big_env,
    }
    return {"name": "ledger", "environment": environment, "metrics": small + big}
