"""Peers' agreement keys for secure aggregation: signed announcements and pinning.

A node's X25519 agreement key reaches its peers through the hub, so the hub could swap
it for one of its own and read the node's pairwise masks. Two defences:

1. announcement: the node signs its agreement key with its Ed25519 identity key
   (RFC 8032) over a domain-separated message that names the node; a peer verifies it
   against the identity key registered for that node when it joined the network (its
   operator compares the fingerprint out of band);
2. trust on first use: each node pins the agreement key it first saw for every peer in
   `peers.json` in its node directory (mode 0600) and refuses a different key later, so
   a hub that later gains a signing key or a registry entry still cannot swap keys
   silently. A genuine key change is reset on purpose by removing the peer's pin.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from medspace.analytics.secagg_errors import PeerKeyChangedError, SecAggError

ANNOUNCEMENT_FORMAT = "medspace-secagg-announcement/1"
PINS_FORMAT = "medspace-peer-pins/1"
PINS_FILE = "peers.json"
_SIGN_CONTEXT = b"medspace-secagg-announcement-v1\n"
NODE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def check_node_name(node: str) -> str:
    """Return `node` if it is a valid node name (the identity registry's rule)."""
    if not isinstance(node, str) or not NODE_NAME.fullmatch(node):
        raise SecAggError(
            "invalid node name in secure aggregation; node names are 1-63 lowercase "
            "letters, digits or '-'"
        )
    return node


def _raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def agreement_fingerprint(key: X25519PublicKey) -> str:
    """SHA-256 of the raw X25519 public key, hex: what an operator compares out of band."""
    return hashlib.sha256(_raw(key)).hexdigest()


@dataclass(frozen=True, slots=True)
class Announcement:
    """A node's X25519 agreement public key, signed by its Ed25519 identity key."""

    node: str
    agreement_key: bytes
    signature: bytes

    def signed_bytes(self) -> bytes:
        """The exact bytes the identity key signs."""
        return _signed_bytes(self.node, self.agreement_key)

    def public_key(self) -> X25519PublicKey:
        """The announced agreement key (verify the announcement first)."""
        return X25519PublicKey.from_public_bytes(self.agreement_key)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form."""
        return {
            "format": ANNOUNCEMENT_FORMAT,
            "node": self.node,
            "agreement_key": base64.b64encode(self.agreement_key).decode("ascii"),
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: object) -> Announcement:
        """Parse an announcement; `SecAggError` if malformed (does not verify it)."""
        try:
            if not isinstance(data, Mapping) or data.get("format") != ANNOUNCEMENT_FORMAT:
                raise ValueError
            node = check_node_name(data["node"])
            key = base64.b64decode(data["agreement_key"], validate=True)
            signature = base64.b64decode(data["signature"], validate=True)
        except (KeyError, TypeError, ValueError, binascii.Error, SecAggError):
            raise SecAggError(
                "malformed agreement-key announcement: the node must announce again"
            ) from None
        if len(key) != 32 or len(signature) != 64:
            raise SecAggError(
                f"malformed agreement-key announcement from {node}: it must announce again",
                nodes=[node],
            )
        return cls(node=node, agreement_key=key, signature=signature)


def _signed_bytes(node: str, agreement_key: bytes) -> bytes:
    return _SIGN_CONTEXT + node.encode("ascii") + b"\n" + agreement_key


def announce(
    node: str, identity_key: Ed25519PrivateKey, agreement_key: X25519PrivateKey
) -> Announcement:
    """Sign the node's agreement public key with its identity key."""
    check_node_name(node)
    raw = _raw(agreement_key.public_key())
    return Announcement(node, raw, identity_key.sign(_signed_bytes(node, raw)))


def verify_announcement(announcement: Announcement, identity_public: Ed25519PublicKey) -> None:
    """Return None if `identity_public` signed this announcement, else raise `SecAggError`."""
    try:
        identity_public.verify(announcement.signature, announcement.signed_bytes())
    except InvalidSignature:
        raise SecAggError(
            f"the agreement-key announcement of {announcement.node} is not signed by its "
            "registered identity key: do not use it; check the node's registration with "
            "its steward",
            nodes=[announcement.node],
        ) from None


class PeerPins:
    """Peers' agreement keys pinned on first use, in a JSON file (mode 0600).

    Safe for several processes of one node: each change holds an exclusive lock and
    rewrites the file atomically.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def pinned(self, node: str) -> X25519PublicKey | None:
        """The key pinned for `node`, or None."""
        raw = self._read().get(node)
        return None if raw is None else X25519PublicKey.from_public_bytes(raw)

    def pin(self, node: str, key: X25519PublicKey) -> None:
        """Pin `key` for `node` on first use; raise `PeerKeyChangedError` if it differs."""
        check_node_name(node)
        raw = _raw(key)
        with self._locked():
            pins = self._read()
            known = pins.get(node)
            if known == raw:
                return
            if known is not None:
                raise PeerKeyChangedError(
                    f"the agreement key announced for {node} differs from the one pinned "
                    f"in {self.path} (pinned {hashlib.sha256(known).hexdigest()[:16]}, "
                    f"announced {hashlib.sha256(raw).hexdigest()[:16]}). Refusing to mask "
                    f"with it. If {node}'s operator confirms (out of band) that the node "
                    f"re-created its agreement key, remove the entry for {node} from "
                    f"{self.path} (PeerPins.forget) and run the task again",
                    nodes=[node],
                )
            pins[node] = raw
            self._write(pins)

    def forget(self, node: str) -> None:
        """Remove `node`'s pin (after its operator confirmed a genuine key change)."""
        with self._locked():
            pins = self._read()
            if pins.pop(node, None) is not None:
                self._write(pins)

    def _read(self) -> dict[str, bytes]:
        try:
            mode = stat.S_IMODE(self.path.stat().st_mode)
            text = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        if mode & 0o077:
            raise SecAggError(
                f"{self.path} has mode {mode:04o}; run `chmod 600 {self.path}` and check "
                "that nobody changed the pinned keys"
            )
        try:
            doc = json.loads(text)
            if doc["format"] != PINS_FORMAT:
                raise ValueError
            pins = {
                check_node_name(name): base64.b64decode(entry["key"], validate=True)
                for name, entry in doc["peers"].items()
            }
            if any(len(raw) != 32 for raw in pins.values()):
                raise ValueError
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error, SecAggError):
            raise SecAggError(
                f"{self.path} is damaged: restore it from the node's backup, or delete it "
                "to pin every peer's current key again"
            ) from None
        return pins

    def _write(self, pins: dict[str, bytes]) -> None:
        doc = {
            "format": PINS_FORMAT,
            "peers": {
                name: {
                    "key": base64.b64encode(raw).decode("ascii"),
                    "fingerprint": hashlib.sha256(raw).hexdigest(),
                }
                for name, raw in sorted(pins.items())
            },
        }
        data = json.dumps(doc, indent=1).encode() + b"\n"
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.path.with_name(f".{self.path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def verified_peers(
    announcements: Mapping[str, Mapping[str, Any] | Announcement],
    identity_keys: Mapping[str, Ed25519PublicKey],
    pins: PeerPins | None,
) -> dict[str, X25519PublicKey]:
    """Check every peer's announcement and pin its key; return node -> agreement key.

    Raises `SecAggError` naming the node for an announcement that is malformed, made
    for another node, unsigned by its registered identity key, or (with `pins`) a key
    different from the pinned one. Deny by default: a peer without a registered
    identity key is refused.
    """
    peers: dict[str, X25519PublicKey] = {}
    for name, raw in announcements.items():
        if isinstance(raw, Announcement):
            announcement = raw
        else:
            try:
                announcement = Announcement.from_dict(raw)
            except SecAggError:
                raise SecAggError(
                    f"the agreement-key announcement listed for {name} is missing or "
                    "malformed: the node must connect and announce again",
                    nodes=[name],
                ) from None
        if announcement.node != name:
            raise SecAggError(
                f"the announcement listed for {name} was made by another node",
                nodes=[name],
            )
        identity = identity_keys.get(name)
        if identity is None:
            raise SecAggError(
                f"{name} has no registered identity key here: register the node first",
                nodes=[name],
            )
        verify_announcement(announcement, identity)
        key = announcement.public_key()
        if pins is not None:
            pins.pin(name, key)
        peers[name] = key
    return peers
