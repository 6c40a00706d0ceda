"""Group commit: appends that arrive while another is being written go in together.

Under load the hub appends from many request threads at once (each lookup, each round of
each query). One transaction per call made them queue for the log's write lock, each
paying for its own transaction. `GroupCommit` lets the first caller to get the lock write
everything queued by then in one `append` (one transaction), and hands each caller the
indices of its own entries. A caller's entries stay together and in order, so batches
signed as one (`EntrySigner.sign_batch`) stay whole. If the combined append fails, each
caller's entries are appended alone, so an error (a bad signature) reaches only the
caller whose entries caused it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from medspace.ledger.entry import SignedEntry


class _Pending:
    __slots__ = ("done", "entries", "error", "indices")

    def __init__(self, entries: Sequence[SignedEntry]) -> None:
        self.entries = entries
        self.indices: list[int] = []
        self.error: BaseException | None = None
        self.done = False


class GroupCommit:
    """Thread-safe `append` that writes concurrent callers' entries in one call of the
    wrapped `append` (e.g. `Log.append`), which must return the new entries' indices in
    order."""

    def __init__(self, append: Callable[[Sequence[SignedEntry]], list[int]]) -> None:
        self._append = append
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()
        self._write_lock = threading.Lock()

    def append(self, entries: Sequence[SignedEntry]) -> list[int]:
        """Append `entries` (with whatever others are waiting); their indices. Raises what
        the wrapped append raised for these entries alone."""
        mine = _Pending(list(entries))
        with self._queue_lock:
            self._queue.append(mine)
        with self._write_lock:
            if not mine.done:  # nobody took ours along: write all that is waiting
                with self._queue_lock:
                    group, self._queue = self._queue, []
                self._write(group)
        if mine.error is not None:
            raise mine.error
        return mine.indices

    def _write(self, group: list[_Pending]) -> None:
        try:
            indices = self._append([e for pending in group for e in pending.entries])
        except Exception as error:  # handed to the caller(s) whose entries it concerns
            if len(group) == 1:
                group[0].error = error
            else:  # whose entries failed? Each caller's alone, in the same order
                for pending in group:
                    try:
                        pending.indices = self._append(pending.entries)
                    except Exception as alone:
                        pending.error = alone
            for pending in group:
                pending.done = True
            return
        start = 0
        for pending in group:
            pending.indices = indices[start : start + len(pending.entries)]
            start += len(pending.entries)
            pending.done = True


__all__ = ["GroupCommit"]
