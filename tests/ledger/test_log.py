"""The append-only log on SQLite and PostgreSQL: appends, lookups, roots, proofs,
checkpoints and cosignatures."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from medspace.ledger import (
    EntryNotFound,
    Log,
    LogStateError,
    NoteSigner,
    SignatureError,
    request_cosignature,
    verify_consistency,
    verify_inclusion,
)
from medspace.ledger.errors import CheckpointError, ProofError
from medspace.ledger.merkle import MemoryTree, leaf_hash

from .conftest import ORIGIN, Parties, Witnesses


def test_appends_return_indices_and_entries_read_back(engine: Engine, parties: Parties) -> None:
    log = Log.create(engine, ORIGIN, parties.ring)
    first = [parties.entry(n) for n in range(3)]
    assert log.append(first) == [0, 1, 2]
    assert log.append([parties.entry(3, actor="h2", project="p2")]) == [3]
    assert log.append([]) == []
    assert log.size() == 4
    stored = log.entry(1)
    assert stored.signed == first[1]
    assert stored.leaf_hash == leaf_hash(first[1].body)
    assert [e.index for e in log.entries(project="p2")] == [3]
    assert [e.index for e in log.entries(type="compute", start=1, limit=2)] == [1, 2]
    assert [e.index for e in log.entries(actor="h1")] == [0, 1, 2]
    with pytest.raises(EntryNotFound, match="no entry 4"):
        log.entry(4)


def test_batches_of_any_shape_build_the_same_tree(engine: Engine, parties: Parties) -> None:
    log = Log.create(engine, ORIGIN, parties.ring)
    entries = [parties.entry(n) for n in range(37)]
    for start, end in [(0, 1), (1, 2), (2, 7), (7, 8), (8, 16), (16, 17), (17, 37)]:
        log.append(entries[start:end])
    tree = MemoryTree(leaf_hash(e.body) for e in entries)
    for size in range(38):
        assert log.root(size) == tree.root(size)
    for index in range(37):
        proof = log.inclusion_proof(index, 37)
        verify_inclusion(index, 37, leaf_hash(entries[index].body), proof, tree.root())
    for old in range(38):
        for new in range(old, 38, 5):
            verify_consistency(
                old, new, tree.root(old), tree.root(new), log.consistency_proof(old, new)
            )


def test_two_writers_on_one_database_build_one_tree(engine: Engine, parties: Parties) -> None:
    # Each Log remembers the frontier after its own appends; one that another writer
    # (a second hub process, the CLI) appended behind must not reuse it.
    first = Log.create(engine, ORIGIN, parties.ring)
    second = Log(engine, parties.ring)
    entries = [parties.entry(n) for n in range(9)]
    for n, (start, end) in enumerate([(0, 1), (1, 3), (3, 4), (4, 7), (7, 8), (8, 9)]):
        (first if n % 2 == 0 else second).append(entries[start:end])
    first.append([])
    tree = MemoryTree(leaf_hash(e.body) for e in entries)
    for size in range(10):
        assert first.root(size) == second.root(size) == tree.root(size)


def test_an_append_that_rolls_back_leaves_the_next_one_right(
    log: Log, parties: Parties, monkeypatch: pytest.MonkeyPatch
) -> None:
    import medspace.ledger.log as log_module

    stored = [parties.entry(0), parties.entry(1)]
    log.append(stored[:1])
    real_insert = log_module._insert_entries

    def failing(*args: object) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(log_module, "_insert_entries", failing)
    with pytest.raises(RuntimeError):
        log.append([parties.entry(7), parties.entry(8)])  # its frontier moved, then rolled back
    monkeypatch.setattr(log_module, "_insert_entries", real_insert)
    log.append(stored[1:])
    assert log.size() == 2
    assert log.root() == MemoryTree(leaf_hash(e.body) for e in stored).root()


def test_a_batch_with_one_bad_signature_stores_nothing(log: Log, parties: Parties) -> None:
    log.append([parties.entry(0)])
    forged = parties.entry(1)
    forged = type(forged)(forged.entry, parties.entry(2).key_id, parties.entry(2).signature)
    with pytest.raises(SignatureError, match=r"batch item 1: .*does not verify"):
        log.append([parties.entry(3), forged, parties.entry(4)])
    assert log.size() == 1
    assert [e.index for e in log.entries()] == [0]


def test_proofs_beyond_the_log_are_refused(log: Log, parties: Parties) -> None:
    log.append([parties.entry(n) for n in range(5)])
    with pytest.raises(ProofError, match="5 entries, not 6"):
        log.inclusion_proof(0, 6)
    with pytest.raises(ProofError):
        log.inclusion_proof(5, 5)
    with pytest.raises(ProofError):
        log.consistency_proof(4, 3)


def test_opening_needs_an_initialised_log_of_the_same_origin(
    sqlite_engine: Engine, parties: Parties
) -> None:
    with pytest.raises(LogStateError, match="create the log first"):
        Log(sqlite_engine, parties.ring)
    Log.create(sqlite_engine, ORIGIN, parties.ring)
    assert Log(sqlite_engine, parties.ring).origin == ORIGIN
    with pytest.raises(LogStateError, match="another origin"):
        Log.create(sqlite_engine, "other.test/log", parties.ring)


def test_checkpoints_are_signed_stored_and_reissued_only_on_growth(
    engine: Engine, parties: Parties
) -> None:
    log = Log.create(engine, ORIGIN, parties.ring)
    empty = log.checkpoint(parties.log_signer)
    assert empty.checkpoint.size == 0
    log.append([parties.entry(n) for n in range(6)])
    six = log.checkpoint(parties.log_signer)
    six.verify(parties.log_signer.verifier)
    assert six.checkpoint.root == log.root()
    assert log.checkpoint(parties.log_signer) == six  # same size: the stored one
    assert log.checkpoint_sizes() == [0, 6]
    assert log.latest_checkpoint() == six
    with pytest.raises(CheckpointError, match="origin"):
        log.checkpoint(NoteSigner("other.test/log", parties.signers["hub"]))


def test_cosignatures_are_verified_stored_and_make_checkpoints_final(
    engine: Engine, parties: Parties, witnesses: Witnesses
) -> None:
    log = Log.create(engine, ORIGIN, parties.ring)
    log.append([parties.entry(n) for n in range(9)])
    signed = log.checkpoint(parties.log_signer)
    assert log.final_checkpoint(witnesses.quorum) is None
    w1, w2, w3 = witnesses.nodes
    first = request_cosignature(log, signed, w1, 0)
    log.add_cosignature(9, first, w1.verifier)
    log.add_cosignature(9, first, w1.verifier)  # stored once
    with pytest.raises(CheckpointError, match="not from witness"):
        log.add_cosignature(9, first, w2.verifier)
    assert log.final_checkpoint(witnesses.quorum) is None
    log.add_cosignature(9, request_cosignature(log, signed, w3, 0), w3.verifier)
    final = log.final_checkpoint(witnesses.quorum)
    assert final is not None and final.checkpoint.size == 9
    assert len(final.note.signatures) == 3
    # The checkpoint grows: witnesses check consistency from what they cosigned.
    log.append([parties.entry(n) for n in range(9, 20)])
    later = log.checkpoint(parties.log_signer)
    for w in (w1, w2, w3):
        log.add_cosignature(20, request_cosignature(log, later, w, 9), w.verifier)
    assert log.final_checkpoint(witnesses.quorum).checkpoint.size == 20
