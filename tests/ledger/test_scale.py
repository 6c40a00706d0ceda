"""Scale: a log of tens of thousands of entries stays provable and auditable (slow)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from medspace.ledger import Log, audit_verify, request_cosignature, verify_inclusion

from .conftest import ORIGIN, Parties, Witnesses

N = 30_000


@pytest.mark.slow
def test_a_large_log_proves_and_audits_and_a_single_flip_is_found(
    sqlite_engine: Engine, parties: Parties, witnesses: Witnesses
) -> None:
    log = Log.create(sqlite_engine, ORIGIN, parties.ring)
    signed = [parties.entry(n, actor=("h1", "h2")[n % 2]) for n in range(N)]
    for start in range(0, N, 5000):
        log.append(signed[start : start + 5000])
        checkpoint = log.checkpoint(parties.log_signer)
        for w in witnesses.nodes:
            cosignature = request_cosignature(log, checkpoint, w, w.latest_size(ORIGIN))
            log.add_cosignature(checkpoint.checkpoint.size, cosignature, w.verifier)
    root = log.root()
    for index in range(0, N, 997):
        verify_inclusion(index, N, log.entry(index).leaf_hash, log.inclusion_proof(index), root)
    options = {
        "keys": parties.ring,
        "log_key": parties.log_signer.verifier,
        "quorum": witnesses.quorum,
        "witnessed": [w.latest(ORIGIN) for w in witnesses.nodes],
    }
    verdict = audit_verify(sqlite_engine, **options)  # type: ignore[arg-type]
    assert verdict.ok and verdict.final_size == N and verdict.signatures_checked == N
    body = log.entry(12_345).signed.body
    flipped = body[:40] + bytes([body[40] ^ 1]) + body[41:]
    with sqlite_engine.begin() as conn:
        conn.execute(
            sa.text("update ledger_entries set body = :b where idx = 12345"), {"b": flipped}
        )
    found = [str(f) for f in audit_verify(sqlite_engine, **options).findings]  # type: ignore[arg-type]
    assert "entry 12345: leaf hash does not match its content" in found
    assert "checkpoint at size 15000: root does not match the entries" in found
