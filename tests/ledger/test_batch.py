"""Batch signatures: one signature over the RFC 9162 root of an actor's entries; every
member stays attributable and checkable, and any change to a batch is refused on intake."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from medspace.ledger import (
    MAX_BATCH_ENTRIES,
    BatchRef,
    Entry,
    EntryError,
    EntrySigner,
    Log,
    SignatureError,
    SignedEntry,
    complete_batches,
    verify_entries,
    verify_entry,
)
from medspace.ledger.batch import BATCH_SIGNING_CONTEXT, batch_proof, batch_root, member_hash
from medspace.ledger.entry import SIGNING_CONTEXT
from medspace.ledger.merkle import leaf_hash, tree_root

from .conftest import Parties


def entry(n: int, actor: str = "h1") -> Entry:
    return Entry(
        type="compute",
        actor=actor,
        time=f"2025-03-01T10:00:{n % 60:02d}.{n:06d}Z",
        node="h1",
        project="p1",
        artefacts={"query": "sha256:" + format(n, "064x")},
        details={"count": n},
    )


def batch(parties: Parties, ns: range, actor: str = "h1") -> list[SignedEntry]:
    return EntrySigner(parties.signers[actor]).sign_batch([entry(n, actor) for n in ns])


def test_a_batch_is_one_signature_over_the_root_of_its_entries(parties: Parties) -> None:
    signed = batch(parties, range(5))
    root = tree_root([leaf_hash(s.entry.canonical()) for s in signed])
    assert [s.batch for s in signed] == [BatchRef(i, 5, root) for i in range(5)]
    assert len({s.signature for s in signed}) == 1
    message = BATCH_SIGNING_CONTEXT + (5).to_bytes(8, "big") + root
    parties.signers["h1"].public_key().verify(signed[0].signature, message)
    with pytest.raises(SignatureError, match="batch proof"):
        _ = signed[3].signed_message  # the signature alone does not cover a member
    assert signed[2].body.startswith(b'{"batch":{"index":2,"root":"' + root.hex().encode())
    assert SignedEntry.from_bytes(signed[2].body) == signed[2]
    verify_entries(signed, parties.ring)


def test_a_batch_of_one_is_an_entry_signed_alone(parties: Parties) -> None:
    [alone] = batch(parties, range(1))
    assert alone.batch is None
    assert alone.signed_message == SIGNING_CONTEXT + alone.entry.canonical()
    assert alone.body.startswith(b'{"entry":')
    assert verify_entry(alone, parties.ring).principal == "h1"
    assert EntrySigner(parties.signers["h1"]).sign_batch([]) == []


def test_a_batch_is_signed_by_one_actor(parties: Parties) -> None:
    with pytest.raises(EntryError, match="one actor"):
        EntrySigner(parties.signers["h1"]).sign_batch([entry(1), entry(2, actor="h2")])


def test_long_runs_are_split_into_batches_of_the_largest_size(parties: Parties) -> None:
    signer = EntrySigner(parties.signers["h1"])
    signed = signer.sign_batch([entry(n % 5000) for n in range(MAX_BATCH_ENTRIES + 1)])
    assert signed[-2].batch is not None and signed[-2].batch.size == MAX_BATCH_ENTRIES
    assert signed[-1].batch is None  # the lone remainder is signed alone
    verify_entries(signed, parties.ring)


def test_one_member_is_checked_with_its_batch_proof(parties: Parties) -> None:
    signed = batch(parties, range(7))
    canon = [s.entry.canonical() for s in signed]
    with pytest.raises(SignatureError, match="batch proof"):
        verify_entry(signed[4], parties.ring)
    assert verify_entry(signed[4], parties.ring, batch_proof(canon, 4)).principal == "h1"
    with pytest.raises(SignatureError, match="not a member of the batch"):
        verify_entry(signed[4], parties.ring, batch_proof(canon, 3))


def test_the_log_serves_batch_proofs(log: Log, parties: Parties) -> None:
    log.append([*batch(parties, range(3)), *batch(parties, range(3, 9), actor="h2")])
    assert log.batch_proof(0) == batch_proof([entry(n).canonical() for n in range(3)], 0)
    for index in range(9):
        logged = log.entry(index).signed
        verify_entry(logged, parties.ring, log.batch_proof(index))
    lone = parties.entry(20)
    log.append([lone])
    assert log.batch_proof(9) == []


def moved_between_batches(parties: Parties) -> list[SignedEntry]:
    a, b = batch(parties, range(4)), batch(parties, range(4, 8))
    return [a[0], b[1], a[2], a[3], b[0], a[1], b[2], b[3]]


def signature_swapped(parties: Parties) -> list[SignedEntry]:
    a, b = batch(parties, range(4)), batch(parties, range(4, 8))
    return [dataclasses.replace(s, signature=b[0].signature) for s in a]


def truncated(parties: Parties) -> list[SignedEntry]:
    return batch(parties, range(5))[:4]


def reordered(parties: Parties) -> list[SignedEntry]:
    signed = batch(parties, range(5))
    return [signed[0], signed[2], signed[1], signed[3], signed[4]]


def reordered_with_positions(parties: Parties) -> list[SignedEntry]:
    signed = batch(parties, range(5))
    ref = [s.batch for s in signed]
    return [dataclasses.replace(signed[k], batch=ref[i]) for i, k in enumerate((0, 2, 1, 3, 4))]


def altered_member(parties: Parties) -> list[SignedEntry]:
    signed = batch(parties, range(5))
    return [*signed[:2], dataclasses.replace(signed[2], entry=entry(99)), *signed[3:]]


def foreign_member(parties: Parties) -> list[SignedEntry]:
    signed = batch(parties, range(3))
    forged = dataclasses.replace(signed[1], entry=entry(1, actor="h2"))
    return [signed[0], forged, signed[2]]


def starts_in_the_middle(parties: Parties) -> list[SignedEntry]:
    return batch(parties, range(5))[1:]


def signed_by_another_actor(parties: Parties) -> list[SignedEntry]:
    return EntrySigner(parties.signers["h2"]).sign_batch([entry(1), entry(2)])


def by_an_unknown_key(parties: Parties) -> list[SignedEntry]:
    return EntrySigner(Ed25519PrivateKey.generate()).sign_batch([entry(1), entry(2)])


@pytest.mark.parametrize(
    ("tamper", "match"),
    [
        # an entry of batch A sits in batch B's place and the other way round
        (moved_between_batches, "does not belong to the batch"),
        # every member carries the signature of another batch by the same key
        (signature_swapped, "does not verify"),
        # the last member was dropped
        (truncated, "cut short"),
        # two members swapped places, positions unchanged
        (reordered, "does not belong to the batch"),
        # two members swapped places and positions rewritten to look in order
        (reordered_with_positions, "do not lead to its signed root"),
        # a member's content changed after signing
        (altered_member, "do not lead to its signed root"),
        # a member claims another actor than the signer
        (foreign_member, "another actor"),
        # the batch's first member is missing
        (starts_in_the_middle, "starts in the middle"),
        # h2 signed entries whose actor is h1
        (signed_by_another_actor, "another principal"),
        # a key nobody registered
        (by_an_unknown_key, "unknown key"),
    ],
)
def test_a_tampered_batch_is_refused_and_nothing_is_stored(
    log: Log, parties: Parties, tamper, match: str
) -> None:
    with pytest.raises(SignatureError, match=match):
        log.append([parties.entry(50), *tamper(parties)])
    assert log.size() == 0


def test_batch_refusals_name_the_position_in_the_append(parties: Parties) -> None:
    with pytest.raises(SignatureError, match=r"batch item 2: .*cut short"):
        verify_entries([parties.entry(1), parties.entry(2), *truncated(parties)], parties.ring)


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=5),
    data=st.data(),
)
@settings(max_examples=25, deadline=None)
def test_any_mix_of_batches_verifies_and_any_dropped_member_is_refused(
    parties: Parties, sizes: list[int], data: st.DataObject
) -> None:
    signed: list[SignedEntry] = []
    start = 0
    for size in sizes:
        signed += batch(parties, range(start, start + size), actor=("h1", "h2")[size % 2])
        start += size
    verify_entries(signed, parties.ring)
    canon = [s.entry.canonical() for s in signed]
    for position, member in enumerate(signed):
        if member.batch is not None:
            first = position - member.batch.index
            proof = batch_proof(canon[first : first + member.batch.size], member.batch.index)
            verify_entry(member, parties.ring, proof)
            assert batch_root(canon[first : first + member.batch.size]) == member.batch.root
    batched = [k for k, s in enumerate(signed) if s.batch is not None]
    if batched:
        drop = data.draw(st.sampled_from(batched))
        with pytest.raises(SignatureError):
            verify_entries(signed[:drop] + signed[drop + 1 :], parties.ring)


def test_a_page_ending_inside_a_batch_holds_its_first_members_back(parties: Parties) -> None:
    lone, members = parties.entry(9), batch(parties, range(4))
    assert complete_batches([lone, *members]) == 5
    assert complete_batches([lone, *members[:3]]) == 1
    assert complete_batches(members[:1]) == 0
    assert complete_batches([]) == 0


def test_member_hashes_are_rfc_9162_leaf_hashes() -> None:
    assert member_hash(b"abc") == leaf_hash(b"abc")


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({"index": 0, "root": "00" * 32}, "exactly: index, root, size"),
        ({"index": 2, "root": "00" * 32, "size": 2}, "inside its batch"),
        ({"index": 0, "root": "00" * 32, "size": 1}, "2 to"),
        ({"index": 0, "root": "00" * 32, "size": MAX_BATCH_ENTRIES + 1}, "2 to"),
        ({"index": 0, "root": "AB" * 32, "size": 2}, "lowercase hex"),
        ({"index": True, "root": "00" * 32, "size": 2}, "inside its batch"),
    ],
)
def test_malformed_batch_references_are_refused(value: object, match: str) -> None:
    with pytest.raises(EntryError, match=match):
        BatchRef.from_json(value)
