"""Checks on stored entry bodies that need no tree state: lookup columns and signatures.

Kept apart (and free of database handles) so `audit_verify` can run signature checks in
worker processes. Reports problems as (index, text); raises nothing on bad data.

Both checks rely on the body layout that appends produce: canonical JSON
{"entry":{...},"key":"<64 hex>","sig":"<base64 of 64 bytes>"} whose entry object always has
its seven members in sorted order, actor first and node, project, time, type last. So the
lookup columns can be compared with the body's leading and trailing bytes without parsing
it (a body that does not have this layout was not written by an append, which the leaf
hash and signature checks report).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from medspace.ledger.entry import SIGNING_CONTEXT

_BODY = re.compile(
    rb'\{"entry":(\{.*\}),"key":"([0-9a-f]{64})","sig":"([A-Za-z0-9+/]{86}==)"\}', re.S
)
_TAIL = 8 + 64 + 9 + 88 + 2
_string = json.encoder.encode_basestring

SignatureRow = tuple[int, bytes, str]
"""(index, body, actor column) of an entry whose signature is to be checked."""

_public_keys: dict[bytes, Ed25519PublicKey] = {}


def key_id_of(body: bytes) -> str | None:
    """The signer key id of a well-formed body, read from its fixed-length tail."""
    if len(body) < _TAIL or body[-_TAIL : -_TAIL + 8] != b',"key":"':
        return None
    return body[-_TAIL + 8 : -_TAIL + 72].decode("ascii", "replace")


def columns_match(body: bytes, type_: Any, actor: Any, node: Any, project: Any, time_: Any) -> bool:
    """Whether the stored lookup columns are exactly the body's type, actor, node, project
    and time."""
    try:
        head = '{"entry":{"actor":' + _string(actor) + ',"artefacts":'
        tail = (
            ',"node":'
            + ("null" if node is None else _string(node))
            + ',"project":'
            + ("null" if project is None else _string(project))
            + ',"time":'
            + _string(time_)
            + ',"type":'
            + _string(type_)
            + "},"
        )
    except TypeError:  # a tampered column of another type
        return False
    end = len(body) - _TAIL + 1
    return body.startswith(head.encode()) and body.endswith(tail.encode(), 0, end)


def check_signatures(
    rows: list[SignatureRow], keys: dict[str, tuple[str, bytes]]
) -> tuple[list[tuple[int, str]], int]:
    """Verify each row's signature with `keys` (key id -> (principal, raw public key)) and
    that the signer is the entry's actor. Returns (problems, signatures checked)."""
    problems: list[tuple[int, str]] = []
    for idx, body, actor in rows:
        match = _BODY.fullmatch(body)
        if match is None:
            problems.append((idx, "body is not a signed ledger entry"))
            continue
        entry_bytes, key_id, signature = match.groups()
        known = keys.get(key_id.decode("ascii"))
        if known is None:
            problems.append((idx, f"signed by unknown key {key_id[:16].decode('ascii')}…"))
            continue
        principal, raw = known
        if principal != actor:
            problems.append((idx, "signed by a key of another principal than its actor"))
            continue
        public = _public_keys.get(raw)
        if public is None:
            public = _public_keys[raw] = Ed25519PublicKey.from_public_bytes(raw)
        try:
            public.verify(base64.b64decode(signature), SIGNING_CONTEXT + entry_bytes)
        except InvalidSignature:
            problems.append((idx, "signature does not verify"))
    return problems, len(rows)
