"""`audit show` and `audit prove`: listing entries and proving one under a checkpoint."""

from __future__ import annotations

import json

import pytest

from medspace.ledger import (
    EntryNotFound,
    Log,
    NotFinal,
    ProofError,
    SignedCheckpoint,
    prove,
    request_cosignature,
    show,
)

from .conftest import Parties, Witnesses


def cosign(log: Log, witnesses: Witnesses, signed: SignedCheckpoint, count: int) -> None:
    for w in witnesses.nodes[:count]:
        cosignature = request_cosignature(log, signed, w, w.latest_size(signed.checkpoint.origin))
        log.add_cosignature(signed.checkpoint.size, cosignature, w.verifier)


def test_show_lists_entries_of_one_project_or_type(log: Log, parties: Parties) -> None:
    log.append([parties.entry(n, project="p1" if n % 3 else "p2") for n in range(9)])
    assert [e.index for e in show(log, project="p2")] == [0, 3, 6]
    assert [e.index for e in show(log, type="compute", limit=2)] == [0, 1]
    assert show(log, type="export") == []
    with pytest.raises(ValueError):
        show(log, type="gossip")


def test_prove_uses_the_newest_final_checkpoint(
    log: Log, parties: Parties, witnesses: Witnesses
) -> None:
    log.append([parties.entry(n) for n in range(5)])
    cosign(log, witnesses, log.checkpoint(parties.log_signer), 2)
    log.append([parties.entry(n) for n in range(5, 12)])
    cosign(log, witnesses, log.checkpoint(parties.log_signer), 1)  # not final yet
    result = prove(log, 3, witnesses.quorum)
    assert result.final and result.checkpoint.checkpoint.size == 5
    result.verify(parties.log_signer.verifier, witnesses.quorum)
    newer = prove(log, 8, witnesses.quorum)
    assert not newer.final and newer.checkpoint.checkpoint.size == 12
    newer.verify(parties.log_signer.verifier)
    with pytest.raises(NotFinal, match="1 of the 2"):
        newer.verify(parties.log_signer.verifier, witnesses.quorum)
    shown = json.loads(json.dumps(result.to_json()))
    assert shown["index"] == 3 and shown["final"] is True
    assert shown["entry"]["details"] == {"count": 3}


def test_a_proof_does_not_verify_for_another_entry(
    log: Log, parties: Parties, witnesses: Witnesses
) -> None:
    log.append([parties.entry(n) for n in range(6)])
    cosign(log, witnesses, log.checkpoint(parties.log_signer), 3)
    result = prove(log, 2, witnesses.quorum)
    other = prove(log, 4, witnesses.quorum)
    swapped = type(result)(other.entry, result.checkpoint, result.proof, True)
    with pytest.raises(ProofError):
        swapped.verify(parties.log_signer.verifier)


def test_prove_needs_an_entry_under_a_checkpoint(
    log: Log, parties: Parties, witnesses: Witnesses
) -> None:
    log.append([parties.entry(0)])
    with pytest.raises(EntryNotFound, match="not covered by a checkpoint yet"):
        prove(log, 0, witnesses.quorum)
    with pytest.raises(EntryNotFound, match="no entry 7"):
        prove(log, 7, witnesses.quorum)
