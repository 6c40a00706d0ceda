"""A node's pinned steward keys, and the check that an approval really is its steward's.

Why: the hub relays every approval to the node with each task. If the node believed the
hub's word, a hub could approve a project on a steward's behalf. Instead each node pins
the public keys of its own stewards locally (`medspace node steward add`, from the
`<user>.pub` file `medspace login` wrote on the steward's machine; pins live in
`<node>/stewards.json`) and runs a task only when the approval the hub forwards is a
ledger entry signed by one of those keys, for this node, this project and the contract
hash the node computes from its own copy of the terms. A hub that forges, replays (for
another project, node or contract) or strips the approval gets the task refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path

from medspace.identity.errors import InvalidUserError, UserKeyError
from medspace.identity.keys import parse_public_key, public_key_text
from medspace.identity.roles import USER_NAME_PATTERN
from medspace.ledger import (
    EntryError,
    EntryType,
    KeyRing,
    SignatureError,
    SignedEntry,
    verify_entry,
)

PINS_FILE = "stewards.json"


class StewardSignatureError(UserKeyError):
    """An approval (or withdrawal) is not signed by one of the node's pinned stewards, or
    it is for another node, project or contract."""


def _pins_path(directory: Path) -> Path:
    return Path(directory) / PINS_FILE


def steward_pins(directory: Path) -> dict[str, str]:
    """The pinned stewards of the node in `directory`: user name -> base64 public key."""
    path = _pins_path(directory)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        pins = {str(k): str(v) for k, v in data["stewards"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise UserKeyError(
            f"{path} is not a steward pin file; re-create it with `medspace node steward add`"
        ) from None
    return pins


def _write(directory: Path, pins: dict[str, str]) -> None:
    path = _pins_path(directory)
    temporary = path.with_suffix(".tmp")
    text = json.dumps({"stewards": dict(sorted(pins.items()))}, indent=2) + "\n"
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def pin_steward(directory: Path, user: str, public_key: str) -> str:
    """Pin `user`'s public key (base64) at this node, replacing an older pin of theirs
    (after a key reset). Returns the key as normalised base64. Raises `InvalidUserError`
    or `NodeKeyError` on a bad name or key."""
    if not USER_NAME_PATTERN.fullmatch(user):
        raise InvalidUserError("invalid steward user name; give it as the hub knows it")
    text = public_key_text(parse_public_key(public_key))
    pins = steward_pins(directory)
    pins[user] = text
    _write(directory, pins)
    return text


def unpin_steward(directory: Path, user: str) -> bool:
    """Remove `user`'s pin; returns whether there was one."""
    pins = steward_pins(directory)
    if pins.pop(user, None) is None:
        return False
    _write(directory, pins)
    return True


def steward_ring(directory: Path) -> KeyRing:
    """The pinned keys as a ledger key ring (principal = steward's user name)."""
    ring = KeyRing()
    for user, key in steward_pins(directory).items():
        ring.add(user, parse_public_key(key))
    return ring


def verify_steward_entry(
    body: str | None,
    pins: KeyRing,
    *,
    kind: EntryType,
    node: str,
    project: str,
    contract_hash: str | None,
) -> SignedEntry:
    """Check the base64 signed entry `body`: a `kind` entry (approval or withdrawal
    revocation) signed by a pinned steward, for `node` and `project`, and, when
    `contract_hash` is given, over exactly that contract. Returns the entry.

    Raises `StewardSignatureError` saying what is wrong."""
    if not body:
        raise StewardSignatureError(
            f"the {kind.value} for node {node} carries no steward signature; the hub must "
            "forward the steward-signed entry"
        )
    try:
        signed = SignedEntry.from_bytes(base64.b64decode(body, validate=True))
        verify_entry(signed, pins)
    except (binascii.Error, ValueError, EntryError, SignatureError):
        raise StewardSignatureError(
            f"the {kind.value} for node {node} is not signed by a steward pinned at this "
            "node; pin the steward's key (`medspace node steward add`) or treat the hub's "
            "claim as forged"
        ) from None
    entry = signed.entry
    if entry.type is not kind or entry.node != node or entry.project != project:
        raise StewardSignatureError(
            f"the signed {entry.type.value} is for another project or node, not a "
            f"{kind.value} of project {project} at node {node}"
        )
    if entry.details.get("decision") != "allow":
        raise StewardSignatureError(f"the signed {kind.value} does not record an allow")
    if contract_hash is not None and entry.artefacts.get("agreement") != f"sha256:{contract_hash}":
        raise StewardSignatureError(
            f"the steward signed another contract than the terms this node holds for "
            f"project {project}; the task is refused"
        )
    return signed
