"""Roots and proofs cross-checked against an independent implementation (pymerkle).

pymerkle is GPL: it is a test-only dependency here and is never imported from src/.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pymerkle = pytest.importorskip("pymerkle", reason="pymerkle (test-only) is not installed")

from medspace.ledger.compact import Frontier  # noqa: E402
from medspace.ledger.errors import ConsistencyError, ProofError  # noqa: E402
from medspace.ledger.merkle import (  # noqa: E402
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

SIZE = 300


@pytest.fixture(scope="module")
def trees() -> tuple[object, MemoryTree, list[bytes]]:
    data = [os.urandom(n % 40) for n in range(SIZE)]
    theirs = pymerkle.InmemoryTree(algorithm="sha256")
    for item in data:
        theirs.append_entry(item)
    ours = MemoryTree(leaf_hash(item) for item in data)
    return theirs, ours, data


def test_leaf_hashes_and_roots_agree_for_every_size(trees) -> None:
    theirs, ours, data = trees
    frontier = Frontier()
    for size in range(1, SIZE + 1):
        frontier.append(leaf_hash(data[size - 1]))
        expected = theirs.get_root(size)
        assert theirs.get_leaf(size) == leaf_hash(data[size - 1])
        assert ours.root(size) == expected
        assert frontier.root() == expected


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_inclusion_proofs_agree_and_verify(trees, data) -> None:
    theirs, ours, _ = trees
    size = data.draw(st.integers(1, SIZE))
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, size, ours)
    # pymerkle's path is [the leaf itself, *siblings bottom-up]; its leaves are 1-based.
    their_path = theirs.prove_inclusion(index + 1, size).serialize()["path"]
    assert [p.hex() for p in proof] == their_path[1:]
    verify_inclusion(index, size, theirs.get_leaf(index + 1), proof, theirs.get_root(size))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_consistency_proofs_verify_against_independent_roots(trees, data) -> None:
    theirs, ours, _ = trees
    new = data.draw(st.integers(0, SIZE))
    old = data.draw(st.integers(0, new))
    proof = consistency_proof(old, new, ours)
    old_root, new_root = theirs.get_root(old), theirs.get_root(new)
    verify_consistency(old, new, old_root, new_root, proof)
    if old > 0:  # pymerkle's own proof between the same sizes checks out against the roots
        pymerkle.verify_consistency(old_root, new_root, theirs.prove_consistency(old, new))
    if 0 < old < new:
        other = theirs.get_root(old - 1) if old > 1 else theirs.get_root(old + 1)
        with pytest.raises(ConsistencyError):
            verify_consistency(old, new, other, new_root, proof)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, SIZE), st.integers(0, 31), st.integers(0, 7), st.data())
def test_any_flipped_bit_breaks_an_inclusion_proof(trees, size, byte, bit, data) -> None:
    theirs, ours, _ = trees
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, size, ours)
    if not proof:
        return
    n = data.draw(st.integers(0, len(proof) - 1))
    bad = bytearray(proof[n])
    bad[byte] ^= 1 << bit
    proof[n] = bytes(bad)
    with pytest.raises(ProofError):
        verify_inclusion(index, size, theirs.get_leaf(index + 1), proof, theirs.get_root(size))
