"""`medspace audit verify`: from the hub's database (`--db`) or over its API (`--hub`).

`--db` runs `medspace.ledger.audit_verify` on the database with the keys the hub keeps
in it (entry signers, log key, witnesses and quorum). `--hub` downloads every entry and
checkpoint, re-appends the entries to a fresh local log (which re-checks every entry
signature and rebuilds the RFC 9162 tree independently of the hub), then checks each
checkpoint's log signature, its root against the rebuilt tree and its witness quorum.
Pass `log_key` (the vkey printed by `hub init`) so the hub cannot choose the key it is
checked with.
"""

from __future__ import annotations

import base64
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from medspace.hub import tables
from medspace.hub.client import HubClient
from medspace.hub.db import make_hub_engine
from medspace.hub.signers import SignerDirectory
from medspace.identity import NodeRegistry, parse_public_key
from medspace.ledger import (
    CheckpointError,
    CosignatureVerifier,
    EntryError,
    KeyRing,
    LedgerError,
    Log,
    NoteVerifier,
    Quorum,
    SignedCheckpoint,
    SignedEntry,
    Verdict,
    audit_verify,
    complete_batches,
)

PAGE = 5000


def _quorum(witnesses: list[CosignatureVerifier], threshold: int | None) -> Quorum:
    if not witnesses:
        raise CheckpointError("the hub has no registered witnesses; register nodes first")
    if threshold is not None:
        threshold = min(threshold, len(witnesses))
    return Quorum(witnesses, threshold)


def verify_database(
    db: str, *, witnessed: list[SignedCheckpoint] | None = None, workers: int = 1
) -> Verdict:
    """Verify the ledger in the hub database at `db` (a URL or a SQLite file path)."""
    url = db if "://" in db else f"sqlite:///{Path(db).absolute()}"
    engine = make_hub_engine(url)
    try:
        with engine.connect() as conn:
            meta = dict(conn.execute(sa.select(tables.meta.c.name, tables.meta.c.value)).all())
        log_key = NoteVerifier.from_vkey(meta["log_vkey"])
        registry = NodeRegistry(engine, origin=log_key.name)
        witnesses = [
            CosignatureVerifier(n.name, parse_public_key(n.public_key)) for n in registry.nodes()
        ]
        threshold = int(meta["quorum"]) if meta.get("quorum") else None
        return audit_verify(
            engine,
            keys=SignerDirectory(engine),
            log_key=log_key,
            quorum=_quorum(witnesses, threshold),
            witnessed=witnessed or (),
            workers=workers,
        )
    except (KeyError, sa.exc.DBAPIError):
        raise CheckpointError(
            "this database holds no MedSpace hub ledger; give the hub's database"
        ) from None
    finally:
        engine.dispose()


@dataclass
class RemoteVerdict:
    """The outcome of verifying a hub over its API."""

    entries: int = 0
    checkpoints: int = 0
    final_size: int | None = None
    findings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was wrong."""
        return not self.findings

    def summary(self) -> str:
        """One line for humans."""
        head = "VERIFIED" if self.ok else f"FAILED ({len(self.findings)} problems)"
        final = "none" if self.final_size is None else f"size {self.final_size}"
        return (
            f"{head}: {self.entries} entries, {self.checkpoints} checkpoints, newest final "
            f"checkpoint {final}, {self.entries} entry signatures checked"
        )


def verify_remote(client: HubClient, *, log_key: str | None = None) -> RemoteVerdict:
    """Download and verify the hub's whole ledger (see the module docstring)."""
    verdict = RemoteVerdict()
    keys = client.get("/ledger/keys")
    shown = NoteVerifier.from_vkey(keys["log_key"])
    pinned = NoteVerifier.from_vkey(log_key) if log_key else shown
    if pinned.vkey != shown.vkey:
        verdict.findings.append("log: the hub shows another log key than the one given")
    ring = KeyRing()
    for signer in keys["signers"]:
        ring.add(signer["principal"], parse_public_key(signer["public_key"]))
    witnesses = [CosignatureVerifier.from_vkey(v) for v in keys["witnesses"]]
    # Checkpoints first: every one then covers entries the hub already holds when they
    # are fetched below, however busy the log is meanwhile.
    notes = _all_checkpoints(client)
    with tempfile.TemporaryDirectory() as scratch:
        engine = sa.create_engine(f"sqlite:///{Path(scratch) / 'mirror.db'}")
        try:
            mirror = Log.create(engine, pinned.name, ring)
            start, target = 0, None
            held: list[SignedEntry] = []  # first members of a batch the next page goes on with
            while target is None or start < target:
                answer = client.get("/ledger/entries", start=start, limit=PAGE)
                # Reading is ledgered too, so the log grows while we read: stop at the
                # size the hub reported first (it covers every checkpoint fetched above).
                target = int(answer["size"]) if target is None else target
                page = answer["entries"][: max(target - start, 0)]
                if not page:
                    break
                batch: list[SignedEntry] = []
                for row in page:
                    if row["index"] != start + len(batch):
                        verdict.findings.append(f"entry {row['index']}: out of order or missing")
                        return verdict
                    try:
                        batch.append(SignedEntry.from_bytes(base64.b64decode(row["body"])))
                    except (EntryError, ValueError) as error:
                        verdict.findings.append(f"entry {row['index']}: {error}")
                        return verdict
                first = start - len(held)
                start += len(batch)
                batch = held + batch
                # A batch signature is checked on the whole batch: keep back its first
                # members until the page that holds the rest.
                cut = complete_batches(batch) if start < target else len(batch)
                batch, held = batch[:cut], batch[cut:]
                try:
                    mirror.append(batch)
                except LedgerError as error:
                    verdict.findings.append(f"entries from {first}: {error}")
                    return verdict
            if held:
                verdict.findings.append(f"entries from {start - len(held)}: a batch is cut short")
                return verdict
            verdict.entries = start
            _check_checkpoints(notes, mirror, pinned, witnesses, keys.get("threshold"), verdict)
        finally:
            engine.dispose()
    return verdict


def _all_checkpoints(client: HubClient) -> list[str]:
    notes: list[str] = []
    after = 0
    while True:
        page = client.get("/ledger/checkpoints", after=after)["checkpoints"]
        if not page:
            return notes
        notes.extend(page)
        after = max(SignedCheckpoint.from_text(t).checkpoint.size for t in page)


def _check_checkpoints(
    notes: list[str],
    mirror: Log,
    log_key: NoteVerifier,
    witnesses: list[CosignatureVerifier],
    threshold: int | None,
    verdict: RemoteVerdict,
) -> None:
    quorum = _quorum(witnesses, threshold) if witnesses else None
    for text in notes:
        signed = SignedCheckpoint.from_text(text)
        size = signed.checkpoint.size
        verdict.checkpoints += 1
        subject = f"checkpoint at size {size}"
        try:
            signed.verify(log_key)
        except CheckpointError as error:
            verdict.findings.append(f"{subject}: {error}")
            continue
        if size > verdict.entries:
            verdict.findings.append(f"{subject}: covers entries the hub did not serve")
        elif mirror.root(size) != signed.checkpoint.root:
            verdict.findings.append(f"{subject}: root does not match the entries")
        elif quorum is not None and quorum.is_final(signed):
            verdict.final_size = size
