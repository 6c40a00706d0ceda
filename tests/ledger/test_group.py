"""Group commit: concurrent appends share one write, each caller gets its own indices,
batches stay whole, and a bad signature fails only the caller who sent it."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from sqlalchemy.engine import Engine

from medspace.ledger import (
    EntrySigner,
    GroupCommit,
    Log,
    SignatureError,
    SignedEntry,
    verify_entries,
)

from .conftest import ORIGIN, Parties


class _HeldLog:
    """`Log.append` that holds its first call until released, so that the appends made
    meanwhile queue up and are written together; counts the writes."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.writes: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def append(self, entries: Sequence[SignedEntry]) -> list[int]:
        if not self.writes:
            self.entered.set()
            assert self.release.wait(30)
        self.writes.append(len(entries))
        return self.log.append(entries)


def _stored_whole(log: Log, parties: Parties) -> None:
    """Every stored entry verifies, batches complete and in order (as `append` checks)."""
    verify_entries([log.entry(i).signed for i in range(log.size())], parties.ring)


def _run_concurrently(group: GroupCommit, held: _HeldLog, calls: list[list[SignedEntry]]) -> dict:
    """First call alone (it holds the write), the rest while it is held; results by call."""
    results: dict[int, object] = {}

    def call(i: int) -> None:
        try:
            results[i] = group.append(calls[i])
        except SignatureError as error:
            results[i] = error

    first = threading.Thread(target=call, args=(0,))
    first.start()
    assert held.entered.wait(30)
    others = [threading.Thread(target=call, args=(i,)) for i in range(1, len(calls))]
    for thread in others:
        thread.start()
    while len(group._queue) < len(calls) - 1:  # all queued behind the held write
        threading.Event().wait(0.001)
    held.release.set()
    for thread in [first, *others]:
        thread.join(30)
    return results


def test_appends_waiting_for_the_write_go_in_as_one_and_each_caller_gets_its_indices(
    engine: Engine, parties: Parties
) -> None:
    log = Log.create(engine, ORIGIN, parties.ring)
    held = _HeldLog(log)
    group = GroupCommit(held.append)
    signer = EntrySigner(parties.signers["h2"])
    batch = signer.sign_batch(
        [parties.entry(100 + n, actor="h2").entry for n in range(3)]
    )  # one signature over three entries: must stay whole
    calls = [[parties.entry(0)], [parties.entry(1), parties.entry(2)], batch, [parties.entry(3)]]
    results = _run_concurrently(group, held, calls)
    assert held.writes == [1, 6]  # the held write, then everyone who queued behind it
    for i, entries in enumerate(calls):
        indices = results[i]
        assert isinstance(indices, list)
        assert [log.entry(k).signed for k in indices] == entries
    assert sorted(k for i in results for k in results[i]) == list(range(7))  # type: ignore[union-attr]
    _stored_whole(log, parties)


def test_a_bad_signature_fails_only_its_caller(engine: Engine, parties: Parties) -> None:
    log = Log.create(engine, ORIGIN, parties.ring)
    held = _HeldLog(log)
    group = GroupCommit(held.append)
    good = parties.entry(1)
    forged = SignedEntry(parties.entry(2).entry, good.key_id, good.signature)
    calls = [[parties.entry(0)], [parties.entry(3)], [parties.entry(4), forged], [parties.entry(5)]]
    results = _run_concurrently(group, held, calls)
    assert isinstance(results[2], SignatureError)
    assert "batch item 1" in str(results[2])  # the position in that caller's own entries
    stored = [log.entry(k).signed for i in (0, 1, 3) for k in results[i]]  # type: ignore[union-attr]
    assert stored == [calls[0][0], calls[1][0], calls[3][0]]
    assert log.size() == 3


def test_one_caller_at_a_time_appends_as_the_log_does(engine: Engine, parties: Parties) -> None:
    log = Log.create(engine, ORIGIN, parties.ring)
    group = GroupCommit(log.append)
    assert group.append([parties.entry(0), parties.entry(1)]) == [0, 1]
    assert group.append([]) == []
    assert group.append([parties.entry(2)]) == [2]
    good = parties.entry(3)
    with pytest.raises(SignatureError):
        group.append([SignedEntry(parties.entry(4).entry, good.key_id, good.signature)])
    assert log.size() == 3


def test_many_threads_appending_at_once_lose_nothing(engine: Engine, parties: Parties) -> None:
    log = Log.create(engine, ORIGIN, parties.ring)
    group = GroupCommit(log.append)
    calls = [[parties.entry(10 * t + k) for k in range(t % 3 + 1)] for t in range(24)]
    results: dict[int, list[int]] = {}

    def call(i: int) -> None:
        results[i] = group.append(calls[i])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    total = sum(len(c) for c in calls)
    assert log.size() == total
    for i, indices in results.items():
        assert [log.entry(k).signed for k in indices] == calls[i]
    _stored_whole(log, parties)
