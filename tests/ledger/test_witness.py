"""Witnesses and quorums: consistency from the last cosigned checkpoint, forks, rollbacks,
persisted state, and why two conflicting histories can never both be final."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medspace.ledger import (
    Checkpoint,
    CheckpointError,
    Cosigner,
    ForkDetected,
    LogStateError,
    NoteSigner,
    NotFinal,
    Quorum,
    RollbackRefused,
    SignedCheckpoint,
    Witness,
    WitnessStateMismatch,
    request_cosignature,
    sign_checkpoint,
)
from medspace.ledger.merkle import MemoryTree, consistency_proof, leaf_hash
from medspace.ledger.note import NoteSignature

from .conftest import ORIGIN, Parties, Witnesses


class History:
    """A log's history held in memory: what a (possibly lying) hub shows a witness."""

    def __init__(self, signer: NoteSigner, items: list[bytes]) -> None:
        self.signer = signer
        self.tree = MemoryTree(leaf_hash(item) for item in items)

    def checkpoint(self, size: int) -> SignedCheckpoint:
        return sign_checkpoint(Checkpoint(ORIGIN, size, self.tree.root(size)), self.signer)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return consistency_proof(old_size, new_size, self.tree)


def items(tag: bytes, n: int) -> list[bytes]:
    return [tag + str(k).encode() for k in range(n)]


@pytest.fixture
def honest(parties: Parties) -> History:
    return History(parties.log_signer, items(b"a", 40))


@pytest.fixture
def rewritten(parties: Parties) -> History:
    """The same first 10 entries, then a different history (entry 10 replaced)."""
    return History(parties.log_signer, items(b"a", 10) + items(b"b", 30))


def test_a_witness_cosigns_a_growing_log_and_remembers_it(
    honest: History, witnesses: Witnesses
) -> None:
    witness = witnesses.nodes[0]
    for old, new in [(0, 5), (5, 5), (5, 17), (17, 40)]:
        signed = honest.checkpoint(new)
        cosignature = witness.cosign(signed, old, honest.consistency_proof(old, new))
        witness.verifier.verify(signed.checkpoint, cosignature)
    assert witness.latest_size(ORIGIN) == 40
    reopened = witnesses.make(0)  # a restart reads the state file
    assert reopened.latest(ORIGIN) == witness.latest(ORIGIN)


def test_a_rewritten_history_is_caught_as_a_fork(
    honest: History, rewritten: History, witnesses: Witnesses
) -> None:
    witness = witnesses.nodes[0]
    witness.cosign(honest.checkpoint(20), 0, [])
    with pytest.raises(
        ForkDetected, match="size 30 is not consistent with the checkpoint at size 20"
    ) as caught:
        witness.cosign(rewritten.checkpoint(30), 20, rewritten.consistency_proof(20, 30))
    assert (caught.value.old_size, caught.value.new_size) == (20, 30)
    # Same size, different root.
    with pytest.raises(ForkDetected, match="size 20"):
        witness.cosign(rewritten.checkpoint(20), 20, [])
    # Even after a restart the witness still holds the honest checkpoint.
    with pytest.raises(ForkDetected):
        witnesses.make(0).cosign(rewritten.checkpoint(40), 20, rewritten.consistency_proof(20, 40))
    assert witnesses.make(0).latest(ORIGIN).checkpoint.root == honest.tree.root(20)


def test_a_proof_that_does_not_fit_is_a_fork_not_a_pass(
    honest: History, rewritten: History, witnesses: Witnesses
) -> None:
    witness = witnesses.nodes[0]
    witness.cosign(honest.checkpoint(20), 0, [])
    # An honest checkpoint sent with a proof from the rewritten history.
    with pytest.raises(ForkDetected):
        witness.cosign(honest.checkpoint(30), 20, rewritten.consistency_proof(20, 30))


def test_an_older_checkpoint_is_refused_as_a_rollback(
    honest: History, witnesses: Witnesses
) -> None:
    witness = witnesses.nodes[0]
    witness.cosign(honest.checkpoint(30), 0, [])
    with pytest.raises(RollbackRefused, match="size 12 is older than the one at size 30"):
        witness.cosign(honest.checkpoint(12), 30, [])
    assert witness.latest_size(ORIGIN) == 30


def test_a_proof_from_the_wrong_size_is_answered_with_the_witness_size(
    honest: History, witnesses: Witnesses
) -> None:
    witness = witnesses.nodes[0]
    witness.cosign(honest.checkpoint(8), 0, [])
    with pytest.raises(WitnessStateMismatch) as caught:
        witness.cosign(honest.checkpoint(20), 5, honest.consistency_proof(5, 20))
    assert caught.value.witness_size == 8
    # The hub-side helper retries with a proof from the size the witness names.
    cosignature = request_cosignature(honest, honest.checkpoint(20), witness, old_size=5)
    witness.verifier.verify(honest.checkpoint(20).checkpoint, cosignature)


def test_checkpoints_not_signed_by_a_known_log_are_refused(
    parties: Parties, honest: History, witnesses: Witnesses
) -> None:
    impostor = History(NoteSigner(ORIGIN, Ed25519PrivateKey.generate()), items(b"a", 5))
    with pytest.raises(CheckpointError, match="no signature"):
        witnesses.nodes[0].cosign(impostor.checkpoint(5), 0, [])
    other = History(NoteSigner("other.test/log", Ed25519PrivateKey.generate()), [])
    with pytest.raises(CheckpointError, match="does not know"):
        witnesses.nodes[0].cosign(
            sign_checkpoint(Checkpoint("other.test/log", 0, other.tree.root(0)), other.signer),
            0,
            [],
        )
    assert witnesses.nodes[0].latest(ORIGIN) is None


def test_a_damaged_state_file_stops_the_witness(tmp_path: Path, parties: Parties) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"version": 1, "logs": {ORIGIN: "garbage"}}))
    cosigner = Cosigner("w.test", Ed25519PrivateKey.generate())
    with pytest.raises(LogStateError, match="restore it from backup"):
        Witness(cosigner, [parties.log_signer.verifier], path)


def cosigned(history: History, size: int, chosen: list[Witness]) -> SignedCheckpoint:
    signed = history.checkpoint(size)
    cosignatures = [request_cosignature(history, signed, w, w.latest_size(ORIGIN)) for w in chosen]
    return signed.with_cosignatures(cosignatures)


def test_a_majority_of_witnesses_makes_a_checkpoint_final(
    honest: History, witnesses: Witnesses
) -> None:
    quorum = witnesses.quorum
    assert quorum.threshold == 2
    one = cosigned(honest, 10, witnesses.nodes[:1])
    assert not quorum.is_final(one)
    with pytest.raises(NotFinal, match="1 of the 2 witness cosignatures"):
        quorum.require_final(one)
    two = cosigned(honest, 10, witnesses.nodes[1:])
    assert quorum.is_final(two)
    quorum.require_final(two)


def test_a_bad_cosignature_fails_the_checkpoint_and_a_foreign_one_is_ignored(
    honest: History, witnesses: Witnesses
) -> None:
    signed = cosigned(honest, 10, witnesses.nodes)
    lines = signed.to_text().splitlines(keepends=True)
    head = "".join(lines[:-1])
    third = NoteSignature.from_line(lines[-1].rstrip("\n"))
    bad = NoteSignature(
        third.name, third.key_id, third.signature[:-1] + bytes([third.signature[-1] ^ 1])
    )
    # A line claiming witness 3's name with witness 1's key ID is an unknown key: ignored.
    foreign = lines[-3].replace(witnesses.nodes[0].name, witnesses.nodes[2].name)
    assert witnesses.quorum.is_final(SignedCheckpoint.from_text(head + foreign))
    broken = SignedCheckpoint.from_text(head + bad.line())
    assert not witnesses.quorum.is_final(broken)
    with pytest.raises(NotFinal, match="do not verify"):
        witnesses.quorum.require_final(broken)


@pytest.mark.parametrize(
    ("verifiers", "threshold", "match"),
    [
        ([], None, "at least one witness"),  # an empty quorum is an error, not a pass
        (["a", "a"], None, "each witness once"),
        (["a", "b"], 3, "between 1 and 2"),
        (["a", "b"], 0, "between 1 and 2"),
    ],
)
def test_quorums_refuse_silent_passes(
    verifiers: list[str], threshold: int | None, match: str
) -> None:
    keys = [Cosigner(name, Ed25519PrivateKey.generate()).verifier for name in verifiers]
    with pytest.raises(CheckpointError, match=match):
        Quorum(keys, threshold)


def test_a_split_view_never_yields_two_final_histories(
    honest: History, rewritten: History, witnesses: Witnesses
) -> None:
    """The hub shows history A to some witnesses and history B to others, in every order;
    whatever it does, A and B are never both final under the majority quorum."""
    w1, w2, w3 = witnesses.nodes
    final_a = cosigned(honest, 20, [w1, w2])
    assert witnesses.quorum.is_final(final_a)
    with pytest.raises(ForkDetected):
        cosigned(rewritten, 20, [w2])
    b_only = cosigned(rewritten, 20, [w3])
    assert not witnesses.quorum.is_final(b_only)
    # Even gluing every cosignature the hub could collect onto B does not make it final.
    glued = b_only.with_cosignatures(final_a.cosignatures(w.verifier)[0] for w in (w1, w2))
    assert not witnesses.quorum.is_final(glued)


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_every_order_of_showing_two_histories_gives_at_most_one_final(
    order: tuple[int, ...], parties: Parties, tmp_path: Path
) -> None:
    cosigners = [Cosigner(f"w{n}.test", Ed25519PrivateKey.generate()) for n in range(3)]
    nodes = [
        Witness(c, [parties.log_signer.verifier], tmp_path / f"{n}.json")
        for n, c in enumerate(cosigners)
    ]
    quorum = Quorum([c.verifier for c in cosigners])
    a = History(parties.log_signer, items(b"a", 12))
    b = History(parties.log_signer, items(b"b", 12))
    got: dict[str, list] = {"a": [], "b": []}
    for step, n in enumerate(order):
        # Alternate the history shown; each witness sees both, in this order.
        for name, history in (("a", a), ("b", b)) if step % 2 == 0 else (("b", b), ("a", a)):
            try:
                signed = history.checkpoint(12)
                got[name].append(request_cosignature(history, signed, nodes[n], 0))
            except ForkDetected:
                pass
    finals = [
        quorum.is_final(h.checkpoint(12).with_cosignatures(got[name]))
        for name, h in (("a", a), ("b", b))
    ]
    assert finals.count(True) <= 1
    assert len(got["a"]) + len(got["b"]) == 3  # each witness cosigned exactly one history
