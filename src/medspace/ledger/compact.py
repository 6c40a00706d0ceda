"""The right frontier of an append-only Merkle tree (a compact range starting at leaf 0).

For a tree of n leaves the frontier is the perfect subtrees given by the set bits of n,
largest first: enough to compute the root and to extend the tree without touching any
older leaf. Appending leaf i completes one interior node per trailing one-bit of i; those
nodes are returned so a store can keep them and later serve proofs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from medspace.ledger.merkle import EMPTY_ROOT, Node

_sha256 = hashlib.sha256


def frontier_nodes(size: int) -> list[Node]:
    """The perfect subtrees that make up the frontier of a tree of `size` leaves."""
    nodes: list[Node] = []
    position = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            nodes.append(Node(level, position >> level))
            position += 1 << level
    return nodes


class Frontier:
    """The compact range [0, size): appends leaves, reports completed nodes, gives roots."""

    __slots__ = ("_hashes", "_levels", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        """Start from a tree of `size` leaves whose frontier node hashes are `hashes`
        (in `frontier_nodes(size)` order)."""
        nodes = frontier_nodes(size)
        if len(nodes) != len(hashes):
            raise ValueError(f"a frontier of size {size} has {len(nodes)} nodes")
        self._size = size
        self._levels = [node.level for node in nodes]
        self._hashes = list(hashes)

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def hashes(self) -> list[bytes]:
        """The frontier node hashes, largest subtree first."""
        return list(self._hashes)

    def append(self, leaf: bytes) -> list[bytes]:
        """Append one leaf hash; return the interior nodes it completes, lowest level first
        (their levels are 1, 2, ...; the node at level L has index size >> L)."""
        levels, hashes = self._levels, self._hashes
        completed: list[bytes] = []
        current, level = leaf, 0
        while levels and levels[-1] == level:
            levels.pop()
            current = _sha256(b"\x01" + hashes.pop() + current).digest()
            completed.append(current)
            level += 1
        levels.append(level)
        hashes.append(current)
        self._size += 1
        return completed

    def root(self) -> bytes:
        """MTH of all leaves appended so far (RFC 9162 §2.1.1)."""
        if not self._hashes:
            return EMPTY_ROOT
        result = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            result = _sha256(b"\x01" + left + result).digest()
        return result
