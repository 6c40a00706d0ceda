"""Checks on stored entry bodies that need no tree state: shape, lookup columns, signature.

Kept apart (and free of database handles) so `audit_verify` can run it in worker
processes. Reports problems as (index, text); raises nothing on bad data.
"""

from __future__ import annotations

import base64
import json
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from medspace.ledger.entry import SIGNING_CONTEXT

# A body is canonical JSON {"entry":{...},"key":"<64 hex>","sig":"<base64 of 64 bytes>"}; the
# sorted keys put the signed entry bytes first and a fixed-length tail after them.
_BODY = re.compile(
    rb'\{"entry":(\{.*\}),"key":"([0-9a-f]{64})","sig":"([A-Za-z0-9+/]{86}==)"\}', re.S
)
_TAIL = 8 + 64 + 9 + 88 + 2

Row = tuple[int, bytes, str, str, "str | None", "str | None", str]
"""(index, body, type, actor, node, project, time) as stored."""

_public_keys: dict[bytes, Ed25519PublicKey] = {}


def key_id_of(body: bytes) -> str | None:
    """The signer key id of a well-formed body, read from its fixed-length tail."""
    if len(body) < _TAIL or body[-_TAIL : -_TAIL + 8] != b',"key":"':
        return None
    return body[-_TAIL + 8 : -_TAIL + 72].decode("ascii", "replace")


def check_bodies(
    rows: list[Row], keys: dict[str, tuple[str, bytes]], signatures_from: int
) -> tuple[list[tuple[int, str]], int]:
    """Check each row's body; signatures only for indices >= `signatures_from`.

    `keys` maps key id -> (principal, raw public key). Returns (problems, signatures checked).
    """
    problems: list[tuple[int, str]] = []
    checked = 0
    for idx, body, type_, actor, node, project, time_ in rows:
        match = _BODY.fullmatch(body)
        if match is None:
            problems.append((idx, "body is not a signed ledger entry"))
            continue
        entry_bytes, key_id, signature = match.groups()
        try:
            entry = json.loads(entry_bytes)
            columns = (
                entry["type"],
                entry["actor"],
                entry["node"],
                entry["project"],
                entry["time"],
            )
        except (ValueError, KeyError, TypeError):
            problems.append((idx, "entry content is not a ledger entry"))
            continue
        if columns != (type_, actor, node, project, time_):
            problems.append(
                (idx, "lookup columns (type, actor, node, project, time) do not match its content")
            )
        if idx < signatures_from:
            continue
        checked += 1
        known = keys.get(key_id.decode("ascii"))
        if known is None:
            problems.append((idx, f"signed by unknown key {key_id[:16].decode('ascii')}…"))
            continue
        principal, raw = known
        if principal != entry["actor"]:
            problems.append((idx, "signed by a key of another principal than its actor"))
            continue
        public = _public_keys.get(raw)
        if public is None:
            public = _public_keys[raw] = Ed25519PublicKey.from_public_bytes(raw)
        try:
            public.verify(base64.b64decode(signature), SIGNING_CONTEXT + entry_bytes)
        except InvalidSignature:
            problems.append((idx, "signature does not verify"))
    return problems, checked
