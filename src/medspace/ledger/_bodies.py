"""Checks on stored entry bodies that need no tree state: lookup columns and signatures.

Kept apart (and free of database handles) so `audit_verify` can run signature checks in
worker processes. Reports problems as (index, text); raises nothing on bad data.

Both checks rely on the body layout that appends produce: canonical JSON
{"batch":{"index":i,"root":"<64 hex>","size":n},"entry":{...},"key":"<64 hex>",
"sig":"<base64 of 64 bytes>"} (no "batch" member for an entry signed alone) whose entry
object always has its seven members in sorted order, actor first and node, project, time,
type last. So the lookup columns can be compared with the entry's leading and trailing
bytes without parsing it (a body that does not have this layout was not written by an
append, which the leaf hash and signature checks report).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from medspace.ledger.batch import MAX_BATCH_ENTRIES, batch_message, batch_root
from medspace.ledger.entry import SIGNING_CONTEXT

_NUMBER = rb"(0|[1-9][0-9]{0,8})"
_BODY = re.compile(
    rb'\{(?:"batch":\{"index":'
    + _NUMBER
    + rb',"root":"([0-9a-f]{64})","size":'
    + _NUMBER
    + rb'\},)?"entry":(\{.*\}),"key":"([0-9a-f]{64})","sig":"([A-Za-z0-9+/]{86}==)"\}',
    re.S,
)
_BATCH_HEAD = re.compile(
    rb'\{"batch":\{"index":' + _NUMBER + rb',"root":"[0-9a-f]{64}","size":' + _NUMBER
)
_TAIL = 8 + 64 + 9 + 88 + 2
_string = json.encoder.encode_basestring

SignatureRow = tuple[int, bytes, str]
"""(index, body, actor column) of an entry whose signature is to be checked."""

_public_keys: dict[bytes, Ed25519PublicKey] = {}


def batch_end(rows: list[SignatureRow]) -> int:
    """How many leading rows end on a batch boundary: rows after that belong to a batch
    that continues past the last row (kept back until its other members are read). Looks
    back at most MAX_BATCH_ENTRIES rows; a longer run cannot be one batch, so all rows are
    then taken (and the check reports the broken batch)."""
    for back in range(min(len(rows), MAX_BATCH_ENTRIES)):
        body = rows[-1 - back][1]
        match = _BATCH_HEAD.match(body)
        if match is None or int(match[1]) + 1 >= int(match[2]):
            return len(rows) - back
    return len(rows)


def key_id_of(body: bytes) -> str | None:
    """The signer key id of a well-formed body, read from its fixed-length tail."""
    if len(body) < _TAIL or body[-_TAIL : -_TAIL + 8] != b',"key":"':
        return None
    return body[-_TAIL + 8 : -_TAIL + 72].decode("ascii", "replace")


def columns_match(body: bytes, type_: Any, actor: Any, node: Any, project: Any, time_: Any) -> bool:
    """Whether the stored lookup columns are exactly the body's type, actor, node, project
    and time."""
    try:
        head = f'"entry":{{"actor":{_string(actor)},"artefacts":'.encode()
        tail = (
            f',"node":{"null" if node is None else _string(node)},"project":'
            f'{"null" if project is None else _string(project)},"time":{_string(time_)},'
            f'"type":{_string(type_)}}},'
        ).encode()
    except TypeError:  # a tampered column of another type
        return False
    start = 1 if body[1:2] == b'"' and body[2:3] == b"e" else body.find(b'},"entry":', 9) + 2
    return body.startswith(head, start) and body.endswith(tail, 0, len(body) - _TAIL + 1)


SignatureJob = tuple[list[int], list[str], str, bytes, bytes]
"""One signature to verify: (entry indices, their actor columns, key id, signed message,
base64 signature). An entry signed alone is one job; a whole batch is one job."""

Problem = tuple[int, str]
"""(entry index, what is wrong)."""


def _verify(raw: bytes, signature: bytes, message: bytes) -> bool:
    public = _public_keys.get(raw)
    if public is None:
        public = _public_keys[raw] = Ed25519PublicKey.from_public_bytes(raw)
    try:
        public.verify(base64.b64decode(signature), message)
    except InvalidSignature:
        return False
    return True


def check_job(job: SignatureJob, known: tuple[str, bytes] | None) -> list[Problem]:
    """Check one signature job with its key (principal, raw public key), or None when the
    key is unknown."""
    indices, actors, key_id, message, signature = job
    if known is None:
        return [(idx, f"signed by unknown key {key_id[:16]}…") for idx in indices]
    principal, raw = known
    foreign = [
        (idx, "signed by a key of another principal than its actor")
        for idx, actor in zip(indices, actors, strict=True)
        if actor != principal
    ]
    if len(foreign) == len(indices):
        return foreign
    if not _verify(raw, signature, message):
        what = "signature" if len(indices) == 1 else "batch signature"
        return foreign + [(idx, f"{what} does not verify") for idx in indices]
    return foreign


def check_jobs(
    jobs: list[SignatureJob], keys: dict[str, tuple[str, bytes]]
) -> tuple[list[Problem], int]:
    """Check many jobs (in a worker process); returns (problems, entries checked)."""
    problems: list[Problem] = []
    for job in jobs:
        problems.extend(check_job(job, keys.get(job[2])))
    return problems, sum(len(job[0]) for job in jobs)


_CUT_SHORT = (
    "its batch is cut short ({} of {} entries in order): entries were deleted, moved or inserted"
)


class _Batch:
    """A batch whose first member was seen: what every later member's body must look like."""

    __slots__ = ("key_id", "members", "mid", "root", "signature", "size", "start", "suffix")

    def __init__(
        self, start: int, size: int, root_hex: bytes, key_id: bytes, signature: bytes
    ) -> None:
        self.start, self.size, self.root = start, size, bytes.fromhex(root_hex.decode())
        self.key_id, self.signature = key_id.decode(), signature
        # Member k's body is b'{"batch":{"index":' k mid <entry> suffix (canonical layout).
        self.mid = b',"root":"' + root_hex + b'","size":%d},"entry":' % size
        self.suffix = b',"key":"' + key_id + b'","sig":"' + signature + b'"}'
        self.members: list[SignatureRow] = []

    def take(self, rows: list[SignatureRow], start: int) -> int:
        """Add the rows from `start` that continue this batch; return how many."""
        k0, mid, suffix, first = len(self.members), self.mid, self.suffix, self.start
        wanted = rows[start : start + self.size - k0]
        fits = [
            idx == first + k
            and body.startswith(b'{"batch":{"index":%d%s' % (k, mid))
            and body.endswith(suffix)
            for k, (idx, body, _) in enumerate(wanted, k0)
        ]
        taken = fits.index(False) if False in fits else len(fits)
        self.members.extend(wanted[:taken])
        return taken

    def entries(self) -> list[bytes]:
        """The members' canonical entry bytes, cut out of their bodies."""
        mid, end = self.mid, -len(self.suffix)
        return [
            body[18 + len(str(k)) + len(mid) : end] for k, (_, body, _) in enumerate(self.members)
        ]


class SignatureChecker:
    """Checks the signatures of consecutive stored entries, fed in index order.

    An entry signed alone is checked at once. Members of a batch are collected until the
    batch is complete (they must be consecutive rows in position order, with one key, root
    and signature); then their bytes must lead to the batch root and the one signature is
    checked. With `defer_unknown`, jobs whose key is not in `keys` are kept in `deferred`
    for the caller to resolve, instead of being reported as unknown.
    """

    def __init__(self, keys: dict[str, tuple[str, bytes]], *, defer_unknown: bool = False):
        self.problems: list[Problem] = []
        self.deferred: list[SignatureJob] = []
        self.checked = 0
        self._keys = keys
        self._defer = defer_unknown
        self._batch: _Batch | None = None

    @property
    def needs(self) -> int:
        """How many more rows the batch begun last still needs (0: none is open)."""
        batch = self._batch
        return 0 if batch is None else batch.size - len(batch.members)

    def continue_batch(self, rows: list[SignatureRow]) -> int:
        """Feed only the leading rows that continue the open batch; return how many."""
        batch = self._batch
        if batch is None:
            return 0
        taken = batch.take(rows, 0)
        if len(batch.members) == batch.size:
            self._close()
        return taken

    def feed(self, rows: list[SignatureRow]) -> None:
        """Check these rows (continuing the rows fed before)."""
        problems = self.problems
        position = 0
        if self._batch is not None:
            position = self._batch.take(rows, 0)
            if len(self._batch.members) == self._batch.size:
                self._close()
            elif position < len(rows):
                self._break()
        while position < len(rows):
            idx, body, actor = rows[position]
            match = _BODY.fullmatch(body)
            if match is None:
                problems.append((idx, "body is not a signed ledger entry"))
                position += 1
                continue
            index, root_hex, size, entry_bytes, key_id, signature = match.groups()
            if index is None:
                message = SIGNING_CONTEXT + entry_bytes
                self._job(([idx], [actor], key_id.decode(), message, signature))
                position += 1
                continue
            count = int(size)
            if index != b"0" or not 2 <= count <= MAX_BATCH_ENTRIES:
                problems.append(
                    (idx, "not in its batch: the batch's earlier members are not right before it")
                )
                position += 1
                continue
            batch = self._batch = _Batch(idx, count, root_hex, key_id, signature)
            position += batch.take(rows, position)
            if len(batch.members) == batch.size:
                self._close()
            elif position < len(rows):
                self._break()

    def finish(self) -> None:
        """No more rows: a batch still open is cut short."""
        self._break()

    def _close(self) -> None:
        batch, self._batch = self._batch, None
        if batch is None:
            return
        indices = [idx for idx, _, _ in batch.members]
        if batch_root(batch.entries()) != batch.root:
            self.checked += batch.size
            problem = "its batch's entries do not lead to the batch's signed root"
            self.problems.extend((idx, problem) for idx in indices)
            return
        actors = [actor for _, _, actor in batch.members]
        message = batch_message(batch.size, batch.root)
        self._job((indices, actors, batch.key_id, message, batch.signature))

    def _break(self) -> None:
        batch, self._batch = self._batch, None
        if batch is not None:
            self.checked += len(batch.members)
            problem = _CUT_SHORT.format(len(batch.members), batch.size)
            self.problems.extend((idx, problem) for idx, _, _ in batch.members)

    def _job(self, job: SignatureJob) -> None:
        known = self._keys.get(job[2])
        if known is None and self._defer:
            self.deferred.append(job)
            return
        self.checked += len(job[0])
        self.problems.extend(check_job(job, known))


def check_signatures(
    rows: list[SignatureRow], keys: dict[str, tuple[str, bytes]]
) -> tuple[list[Problem], int]:
    """Verify each row's signature with `keys` (key id -> (principal, raw public key)) and
    that the signer is the entry's actor (see `SignatureChecker`); a batch left open at the
    end is cut short. Returns (problems, entries whose signature was checked)."""
    checker = SignatureChecker(keys)
    checker.feed(rows)
    checker.finish()
    return checker.problems, checker.checked
