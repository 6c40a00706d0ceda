"""RFC 9162 tree hashing and proofs against published test vectors.

The vectors are the RFC 6962/9162 reference leaves, roots and proofs used by the
transparency-dev/merkle Go library (proof/verify_test.go): eight leaves of 0, 1, 1, 2, 2, 4,
8 and 16 bytes and the roots of every prefix of them.
"""

from __future__ import annotations

import pytest

from medspace.ledger.errors import ConsistencyError, ProofError
from medspace.ledger.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# (0-based leaf index, tree size, proof)
INCLUSION = [
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (0, 1, []),
]

# (old size, new size, proof)
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]


@pytest.fixture(scope="module")
def tree() -> MemoryTree:
    return MemoryTree(leaf_hash(leaf) for leaf in LEAVES)


def test_hash_prefixes_follow_rfc_9162() -> None:
    assert leaf_hash(b"") == ROOTS[0]  # a one-leaf tree's root is its leaf hash
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert node_hash(ROOTS[0], leaf_hash(b"\x00")) == ROOTS[1]


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_of_every_prefix_match_the_vectors(tree: MemoryTree, size: int) -> None:
    assert tree.root(size) == ROOTS[size - 1]
    assert tree_root([leaf_hash(leaf) for leaf in LEAVES[:size]]) == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "expected"), INCLUSION)
def test_inclusion_proofs_match_the_vectors(
    tree: MemoryTree, index: int, size: int, expected: list[bytes]
) -> None:
    assert inclusion_proof(index, size, tree) == expected
    verify_inclusion(index, size, leaf_hash(LEAVES[index]), expected, ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "expected"), CONSISTENCY)
def test_consistency_proofs_match_the_vectors(
    tree: MemoryTree, old: int, new: int, expected: list[bytes]
) -> None:
    assert consistency_proof(old, new, tree) == expected
    verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], expected)


def _inclusion_probes(index: int, size: int, proof: list[bytes]) -> list[tuple]:
    root, leaf = ROOTS[size - 1], leaf_hash(LEAVES[index])
    probes = [
        (index + 1, size, leaf, proof, root),  # wrong index
        (index ^ 2, size, leaf, proof, root),  # wrong index
        (index, size * 2, leaf, proof, root),  # wrong tree height
        (index, size, leaf_hash(b"WrongLeaf"), proof, root),  # wrong leaf
        (index, size, leaf, proof, EMPTY_ROOT),  # wrong root
        (index, size, leaf, [*proof, root], root),  # trailing garbage
        (index, size, leaf, [root, *proof], root),  # preceding garbage
    ]
    if index > 0:
        probes.append((index - 1, size, leaf, proof, root))
    if size > 1:
        probes.append((index, size // 2, leaf, proof, root))
    for n in range(len(proof)):  # one flipped bit in each element
        bad = list(proof)
        bad[n] = bytes([bad[n][0] ^ 8]) + bad[n][1:]
        probes.append((index, size, leaf, bad, root))
    if proof:
        probes.append((index, size, leaf, proof[:-1], root))  # removed element
    return probes


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_corrupted_inclusion_proofs_are_refused(index: int, size: int, proof: list[bytes]) -> None:
    for probe in _inclusion_probes(index, size, proof):
        with pytest.raises(ProofError):
            verify_inclusion(*probe)


@pytest.mark.parametrize(("old", "new", "proof"), [c for c in CONSISTENCY if c[2]])
def test_corrupted_consistency_proofs_are_refused(old: int, new: int, proof: list[bytes]) -> None:
    r1, r2 = ROOTS[old - 1], ROOTS[new - 1]
    probes = [
        (old - 1, new, r1, r2, proof),  # wrong old size
        (old + 1, new, r1, r2, proof),
        (old ^ 2, new, r1, r2, proof),
        (old, new * 2, r1, r2, proof),  # wrong new size
        (old, new // 2, r1, r2, proof),
        (old, new, b"WrongRoot".ljust(32, b"\0"), r2, proof),  # wrong roots
        (old, new, r1, b"WrongRoot".ljust(32, b"\0"), proof),
        (old, new, r2, r1, proof),  # swapped roots
        (old, new, r1, r2, []),  # empty proof
        (old, new, r1, r2, [*proof, r1]),  # trailing garbage
        (old, new, r1, r2, [*proof, r2]),
        (old, new, r1, r2, [r1, *proof]),  # preceding garbage
        (old, new, r1, r2, [r2, *proof]),
        (old, new, r1, r2, [proof[0], *proof]),
        (old, new, r1, r2, proof[:-1]),  # truncated
    ]
    for n in range(len(proof)):
        bad = list(proof)
        bad[n] = bytes([bad[n][0] ^ 16]) + bad[n][1:]
        probes.append((old, new, r1, r2, bad))
    for probe in probes:
        with pytest.raises(ConsistencyError):
            verify_consistency(*probe)


@pytest.mark.parametrize(
    ("old", "new", "r1", "r2", "proof", "ok"),
    [
        (0, 0, ROOTS[0], ROOTS[0], [], True),  # equal sizes, equal roots
        (0, 1, ROOTS[0], ROOTS[1], [], True),  # the empty tree is consistent with anything
        (1, 1, ROOTS[1], ROOTS[1], [], True),
        (1, 1, ROOTS[0], ROOTS[1], [], False),  # equal sizes, different roots: a fork
        (1, 0, ROOTS[0], ROOTS[1], [], False),  # time travel to the past
        (2, 1, ROOTS[0], ROOTS[1], [], False),
        (1, 2, ROOTS[0], ROOTS[1], [], False),  # empty proof between different sizes
        (1, 1, ROOTS[1], ROOTS[1], [EMPTY_ROOT], False),  # equal sizes need an empty proof
        (0, 1, ROOTS[1], ROOTS[1], [EMPTY_ROOT], False),
    ],
)
def test_edge_cases_of_consistency(
    old: int, new: int, r1: bytes, r2: bytes, proof: list[bytes], ok: bool
) -> None:
    if ok:
        verify_consistency(old, new, r1, r2, proof)
    else:
        with pytest.raises(
            ConsistencyError, match=f"size {new} is not consistent with tree at size {old}"
        ):
            verify_consistency(old, new, r1, r2, proof)


def test_inclusion_needs_an_index_inside_the_tree() -> None:
    with pytest.raises(ProofError, match="cannot be in a tree of size 1"):
        verify_inclusion(1, 1, ROOTS[0], [], ROOTS[0])
    with pytest.raises(ProofError, match="32"):
        verify_inclusion(0, 1, b"", [], ROOTS[0])
