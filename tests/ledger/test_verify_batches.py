"""audit_verify on a log of batch-signed entries, in one ordered pass and in worker
processes over aligned chunks: a clean log verifies, and batch tampering in the database
(an entry moved between batches, a swapped batch signature, a truncated batch, an altered
member with recomputed hashes) is found either way."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from medspace.ledger import (
    EntrySigner,
    Log,
    SignedEntry,
    TrustedHead,
    Verdict,
    audit_verify,
    request_cosignature,
    verify_entry,
)
from medspace.ledger import verify as verify_module
from medspace.ledger.merkle import leaf_hash

from .conftest import ORIGIN, Parties, Witnesses
from .test_batch import entry

# (actor, entries) per batch, appended in this order; checkpoints after 10, 25 and 40.
BATCHES = [("h1", 5), ("h2", 3), ("alice", 1), ("hub", 1), ("h1", 7), ("h2", 8), ("hub", 15)]
CHECKPOINTS = (10, 25, 40)


@dataclass
class Batched:
    engine: Engine
    log: Log
    parties: Parties
    witnesses: Witnesses
    signed: list[SignedEntry]

    def verify(self, workers: int = 1, **kw: object) -> Verdict:
        options = {
            "keys": self.parties.ring,
            "log_key": self.parties.log_signer.verifier,
            "quorum": self.witnesses.quorum,
            "witnessed": [w.latest(ORIGIN) for w in self.witnesses.nodes],
            **kw,
        }
        return audit_verify(self.engine, workers=workers, **options)  # type: ignore[arg-type]

    def sql(self, statement: str, **params: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(statement), params)

    def set_body(self, index: int, body: bytes, *, rehash: bool = False) -> None:
        if rehash:
            self.sql(
                "update ledger_entries set body = :b, leaf_hash = :h where idx = :i",
                b=body,
                h=leaf_hash(body),
                i=index,
            )
        else:
            self.sql("update ledger_entries set body = :b where idx = :i", b=body, i=index)


def build(engine: Engine, parties: Parties, witnesses: Witnesses) -> Batched:
    log = Log.create(engine, ORIGIN, parties.ring)
    signed: list[SignedEntry] = []
    n = 0
    for actor, size in BATCHES:
        signer = EntrySigner(parties.signers[actor])
        signed += signer.sign_batch([entry(k, actor) for k in range(n, n + size)])
        n += size
    done = 0
    for size in CHECKPOINTS:
        log.append(signed[done:size])
        done = size
        checkpoint = log.checkpoint(parties.log_signer)
        for w in witnesses.nodes:
            cosignature = request_cosignature(log, checkpoint, w, w.latest_size(ORIGIN))
            log.add_cosignature(size, cosignature, w.verifier)
    return Batched(engine, log, parties, witnesses, signed)


@pytest.fixture
def batched(sqlite_engine: Engine, parties: Parties, witnesses: Witnesses) -> Batched:
    return build(sqlite_engine, parties, witnesses)


@pytest.fixture(params=[1, 2], ids=["one-pass", "chunked"])
def workers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    # Chunks of 8 entries, so batches straddle chunk edges and the tree above the chunks
    # is joined from several of them.
    monkeypatch.setattr(verify_module, "_CHUNK_HEIGHT", 3)
    return int(request.param)


def errors(verdict: Verdict) -> list[str]:
    return [str(f) for f in verdict.findings if f.severity == "error"]


def test_a_clean_batch_signed_log_verifies(batched: Batched, workers: int) -> None:
    verdict = batched.verify(workers)
    assert verdict.ok, verdict.findings
    assert (verdict.entries, verdict.final_size, verdict.signatures_checked) == (40, 40, 40)
    assert verdict.trusted_head == TrustedHead(40, batched.log.root())
    again = batched.verify(workers, trusted=verdict.trusted_head)
    assert again.ok and again.signatures_checked == 0


def test_every_stored_member_checks_against_its_batch_proof(batched: Batched) -> None:
    for index in range(40):
        logged = batched.log.entry(index).signed
        verify_entry(logged, batched.parties.ring, batched.log.batch_proof(index))


def test_an_entry_moved_between_batches_is_found(batched: Batched, workers: int) -> None:
    # Entry 1 (batch 0..4) and entry 6 (batch 5..7) trade places, with recomputed leaf
    # hashes: each now sits inside a batch it was not signed in.
    one, six = batched.signed[1].body, batched.signed[6].body
    batched.set_body(1, six, rehash=True)
    batched.set_body(6, one, rehash=True)
    found = errors(batched.verify(workers))
    assert any(f.startswith("entry 0: its batch is cut short (1 of 5") for f in found)
    assert "entry 1: not in its batch: the batch's earlier members are not right before it" in (
        found
    )
    assert "checkpoint at size 10: root does not match the entries" in found


def test_a_swapped_batch_signature_is_found(batched: Batched, workers: int) -> None:
    # Every member of h1's batch 10..16 gets the signature of h2's batch 17..24.
    theirs = batched.signed[17].body[-90:-2]
    for index in range(10, 17):
        body = batched.signed[index].body
        batched.set_body(index, body[:-90] + theirs + body[-2:], rehash=True)
    found = errors(batched.verify(workers))
    for index in range(10, 17):
        assert f"entry {index}: batch signature does not verify" in found
    assert "checkpoint at size 25: root does not match the entries" in found


def test_a_truncated_batch_at_the_end_of_the_log_is_found(batched: Batched, workers: int) -> None:
    batched.sql("delete from ledger_entries where idx = 39")
    batched.sql("update ledger_head set size = 39")
    found = errors(batched.verify(workers))
    assert any(f.startswith("entry 25: its batch is cut short (14 of 15") for f in found)
    assert any(f.startswith("entry 38: its batch is cut short (14 of 15") for f in found)
    assert any(
        f.startswith("witnessed checkpoint at size 40: the log now holds only") for f in found
    )


def test_a_member_deleted_inside_the_log_is_found(batched: Batched, workers: int) -> None:
    batched.sql("delete from ledger_entries where idx = 20")
    found = errors(batched.verify(workers))
    assert "entry 20: missing (next stored: 21)" in found
    assert any(f.startswith("entry 17: its batch is cut short (3 of 8") for f in found)


def test_an_altered_member_with_recomputed_hashes_is_found(batched: Batched, workers: int) -> None:
    body = batched.signed[30].body.replace(b'"count":30', b'"count":31')
    batched.set_body(30, body, rehash=True)
    found = errors(batched.verify(workers))
    assert "entry 30: its batch's entries do not lead to the batch's signed root" in found
    assert "checkpoint at size 40: root does not match the entries" in found


def test_chunked_and_one_pass_audits_agree(
    batched: Batched, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify_module, "_CHUNK_HEIGHT", 2)
    body = batched.signed[13].body.replace(b'"count":13', b'"count":14')
    batched.set_body(13, body)
    batched.sql("update ledger_entries set nodes = :n where idx = 31", n=b"\1" * 160)
    batched.sql("update ledger_entries set nodes = :n where idx = 33", n=b"\2" * 32)
    batched.sql("update ledger_entries set nodes = :n where idx = 36", n=b"\3" * 32)
    batched.sql("update ledger_entries set project = 'p9' where idx = 2")
    one = batched.verify(1)
    seen: list[tuple[int, int]] = []
    chunked = batched.verify(2, progress=lambda done, total: seen.append((done, total)))
    assert sorted(map(str, chunked.findings)) == sorted(map(str, one.findings))
    assert chunked.signatures_checked == one.signatures_checked == 40
    assert seen[-1] == (40, 40)
    for index in (31, 33, 36):  # last of a chunk, inside one, and a node too many
        assert f"entry {index}: stored tree nodes do not match the entries" in errors(chunked)
    assert "entry 13: its batch's entries do not lead to the batch's signed root" in errors(chunked)


@pytest.mark.postgres
def test_chunked_audit_on_postgresql(
    pg_engine: Engine, parties: Parties, witnesses: Witnesses, workers: int
) -> None:
    batched = build(pg_engine, parties, witnesses)
    verdict = batched.verify(workers)
    assert verdict.ok, verdict.findings
    assert verdict.signatures_checked == 40
    body = batched.signed[30].body.replace(b'"count":30', b'"count":31')
    batched.set_body(30, body, rehash=True)
    found = errors(batched.verify(workers))
    assert "entry 30: its batch's entries do not lead to the batch's signed root" in found
