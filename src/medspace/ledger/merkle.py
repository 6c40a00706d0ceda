"""Merkle tree hashing and proofs per RFC 9162 §2.1 (the Certificate Transparency v2 tree).

Hashes: leaf = SHA-256(0x00 || data) (§2.1.1), interior = SHA-256(0x01 || left || right),
empty tree = SHA-256(""). Proofs are generated from *perfect subtrees* `Node(level, index)`
covering leaves [index * 2**level, (index + 1) * 2**level): every subtree hash that
RFC 9162's recursive definitions need is such a node or a short right-to-left fold of them,
so a store of leaf and interior node hashes answers any proof with O(log n) lookups and no
recursion over leaf lists. Verification follows §2.1.3.2 and §2.1.4.2 step by step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from medspace.ledger.errors import ConsistencyError, ProofError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256


@dataclass(frozen=True, slots=True)
class Node:
    """A perfect subtree: leaves [index * 2**level, (index + 1) * 2**level)."""

    level: int
    index: int

    @property
    def last_leaf(self) -> int:
        """Index of the rightmost leaf under this node (it completes the node)."""
        return ((self.index + 1) << self.level) - 1


class NodeReader(Protocol):
    """Something that knows perfect-subtree hashes (a database, a tree in memory)."""

    def node_hashes(self, nodes: Collection[Node]) -> Mapping[Node, bytes]:
        """Return the hash of every node asked for; raise if one is unknown."""
        ...


def leaf_hash(data: bytes) -> bytes:
    """Leaf hash per RFC 9162 §2.1.1: SHA-256(0x00 || data)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Interior hash per RFC 9162 §2.1.1: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2): RFC 9162's `k`."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_nodes(start: int, end: int) -> list[Node]:
    """Decompose the RFC 9162 subtree D[start:end] into perfect nodes, left to right.

    Every subtree the RFC's recursions produce starts at a multiple of the largest power of
    two not above its size, so the greedy split by the set bits of its size is aligned.
    """
    nodes: list[Node] = []
    size = end - start
    position = start
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            if position % (1 << level):
                raise ValueError(f"subtree [{start}, {end}) is not aligned")
            nodes.append(Node(level, position >> level))
            position += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """Hash perfect-subtree hashes (left to right) into their RFC 9162 subtree hash."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Subtrees [start, end) whose hashes form PATH(index, D[size]) (RFC 9162 §2.1.3.1),
    in proof order: the sibling nearest the leaf first."""
    if not 0 <= index < size:
        raise ProofError(f"no inclusion proof for entry {index} in a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    low, high = 0, size
    while high - low > 1:
        k = _split(high - low)
        if index - low < k:
            ranges.append((low + k, high))
            high = low + k
        else:
            ranges.append((low, low + k))
            low += k
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Subtrees whose hashes form PROOF(old_size, D[new_size]) (RFC 9162 §2.1.4.1)."""
    if not 0 <= old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    ranges: list[tuple[int, int]] = []
    low, high, m, complete = 0, new_size, old_size, True
    while True:
        if m == high - low:
            if not complete:
                ranges.append((low, high))
            break
        k = _split(high - low)
        if m <= k:
            ranges.append((low + k, high))
            high = low + k
        else:
            ranges.append((low, low + k))
            low += k
            m -= k
            complete = False
    ranges.reverse()
    return ranges


def _hash_ranges(ranges: Sequence[tuple[int, int]], reader: NodeReader) -> list[bytes]:
    wanted = [subtree_nodes(start, end) for start, end in ranges]
    found = reader.node_hashes({node for nodes in wanted for node in nodes})
    return [fold([found[node] for node in nodes]) for nodes in wanted]


def root_hash(size: int, reader: NodeReader) -> bytes:
    """MTH(D[size]): the root of the first `size` leaves."""
    if size == 0:
        return EMPTY_ROOT
    return _hash_ranges([(0, size)], reader)[0]


def inclusion_proof(index: int, size: int, reader: NodeReader) -> list[bytes]:
    """The RFC 9162 inclusion proof of leaf `index` in the tree of `size` leaves."""
    return _hash_ranges(inclusion_ranges(index, size), reader)


def consistency_proof(old_size: int, new_size: int, reader: NodeReader) -> list[bytes]:
    """The RFC 9162 consistency proof between tree sizes `old_size` <= `new_size`."""
    return _hash_ranges(consistency_ranges(old_size, new_size), reader)


def _check_hashes(hashes: Iterable[bytes], what: str) -> None:
    for value in hashes:
        if len(value) != HASH_SIZE:
            raise ProofError(f"{what} holds a hash of {len(value)} bytes; SHA-256 has 32")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """Run RFC 9162 §2.1.3.2 steps 1-4 and return the root the proof leads to."""
    _check_hashes([leaf, *proof], "inclusion proof")
    if index >= size or index < 0:
        raise ProofError(f"entry {index} cannot be in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Verify an inclusion proof per RFC 9162 §2.1.3.2; raise `ProofError` if it fails."""
    if root_from_inclusion_proof(index, size, leaf, proof) != root:
        raise ProofError(
            f"inclusion proof for entry {index} does not lead to the root at size {size}"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Verify a consistency proof per RFC 9162 §2.1.4.2.

    Raises `ConsistencyError` (naming both sizes) when the proof does not show that the tree
    at `new_size` extends the tree at `old_size`.
    """

    def fail(why: str) -> ConsistencyError:
        return ConsistencyError(
            f"tree at size {new_size} is not consistent with tree at size {old_size}: {why}",
            old_size=old_size,
            new_size=new_size,
        )

    try:
        _check_hashes([old_root, new_root, *proof], "consistency proof")
    except ProofError as exc:
        raise fail(str(exc)) from None
    if old_size < 0 or old_size > new_size:
        raise fail("the old size is larger than the new size")
    if old_size == new_size:
        if proof:
            raise fail("a proof between equal sizes must be empty")
        if old_root != new_root:
            raise fail("equal sizes with different roots")
        return
    if old_size == 0:
        if proof:
            raise fail("a proof from the empty tree must be empty")
        return
    # Step 1: an empty path proves nothing for 0 < old < new.
    if not proof:
        raise fail("the proof is empty")
    path = list(proof)
    # Step 2: when old_size is a power of two the old root is itself a node of the path.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # Steps 3-4.
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            raise fail("the proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise fail("the proof is shorter than the tree is deep")
    if fr != old_root:
        raise fail("the proof does not lead to the old root")
    if sr != new_root:
        raise fail("the proof does not lead to the new root")


class MemoryTree:
    """A whole tree in memory (every perfect node kept): for tests, tools and small logs."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for value in leaf_hashes:
            self.append(value)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash and every perfect node it completes."""
        self._levels[0].append(leaf)
        level = 0
        while len(self._levels[level]) % 2 == 0:
            row = self._levels[level]
            if len(self._levels) == level + 1:
                self._levels.append([])
            self._levels[level + 1].append(node_hash(row[-2], row[-1]))
            level += 1

    def node_hashes(self, nodes: Collection[Node]) -> Mapping[Node, bytes]:
        """Hashes of perfect nodes; raises `ProofError` for a node not complete yet."""
        try:
            return {node: self._levels[node.level][node.index] for node in nodes}
        except IndexError:
            raise ProofError("asked for a subtree beyond the tree's size") from None

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first `size` leaves (all leaves by default)."""
        return root_hash(self.size if size is None else size, self)


def tree_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over a list of leaf hashes, level by level (no recursion)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    return MemoryTree(leaf_hashes).root()
