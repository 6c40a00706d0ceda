"""Peer pins: the identity keys of the nodes this node has answered, pinned on first use.

A responder learns an asking node's Ed25519 key from the hub (its node registry). On the
first request from a node it pins that key in `DIR/lookup-peers.json` (0600); later it
refuses requests whose forwarded key differs, so a hub that swaps a node's key later
(to forge requests, or to have answers sealed to a key it holds) is caught. A hub that
lies already at the first contact is not caught by pinning alone: stewards can compare
fingerprints out of band (`medspace lookup peers --node DIR`) or pre-seed the file.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from medspace.identity import IdentityError, fingerprint, parse_public_key, public_key_text
from medspace.lookup.errors import RequestRejected
from medspace.node.filecache import FileCache
from medspace.node.keys import atomic_write

PEERS_FILE = "lookup-peers.json"


class PeerPins:
    """The pinned identity keys of peer nodes, backed by a JSON file in the node dir."""

    def __init__(self, directory: Path) -> None:
        self._path = Path(directory) / PEERS_FILE
        self._lock = threading.Lock()
        self._file = FileCache(self._path, self._parse)  # read on every lookup

    def _read(self) -> dict[str, str]:
        return dict(self._file.get())  # a copy: callers may add a pin to it

    def _parse(self, path: Path) -> dict[str, str]:
        if not path.exists():
            return {}
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
            raise RequestRejected(
                f"{self._path} is damaged; restore it from backup (or remove it to re-pin)"
            )
        return doc

    def pinned(self) -> dict[str, str]:
        """Node name -> pinned public key (base64)."""
        with self._lock:
            return self._read()

    def check(self, node: str, shown: str) -> Ed25519PublicKey:
        """The key of `node`: pinned now if new, else it must equal the pin. Raises
        `RequestRejected` for a changed key or one that does not parse."""
        key = self.key_for(node, shown)
        self.pin(node, key)
        return key

    def pin(self, node: str, key: Ed25519PublicKey) -> None:
        """Pin `key` for `node` unless a key is pinned already (call once something
        signed with it has verified, so that a key the hub made up is never pinned)."""
        text = public_key_text(key)
        with self._lock:
            pins = self._read()
            if node not in pins:
                pins[node] = text
                atomic_write(self._path, json.dumps(pins, indent=2, sort_keys=True).encode())

    def key_for(self, node: str, shown: str) -> Ed25519PublicKey:
        """The key the hub shows for `node`, which must equal the pin if there is one;
        nothing is pinned. Raises `RequestRejected` for a changed key or one that does
        not parse."""
        try:
            key = parse_public_key(shown)
        except (IdentityError, ValueError, TypeError):
            raise RequestRejected(f"the hub forwarded no valid identity key for {node}") from None
        text = public_key_text(key)
        with self._lock:
            pinned = self._read().get(node)
        if pinned is not None and pinned != text:
            raise RequestRejected(
                f"the hub shows another identity key for node {node} than the one pinned "
                f"(fingerprint {fingerprint(parse_public_key(pinned))}); refusing. If {node} "
                f"re-keyed on purpose, confirm with its steward and remove it from {PEERS_FILE}"
            )
        return key
