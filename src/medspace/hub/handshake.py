"""The channel handshake's key agreement: one fresh X25519 key pair per side and session,
each half signed by its owner's registered Ed25519 key, two HMAC keys derived from it.

    hub  -> node  challenge, hub_ephemeral, hub_signature
                  hub_signature  = Ed25519_hub(HUB_OFFER || H(challenge, hub_ephemeral))
    node -> hub   hello, node_ephemeral, node_signature (and the challenge signature)
                  node_signature = Ed25519_node(NODE_ACCEPT ||
                                                H(challenge, hub_ephemeral, node_ephemeral))

Each side checks the other's signature with the key it already trusts (the node: the
hub key it pinned; the hub: the node's registered key), so nobody in the middle can
swap an ephemeral key. Both then derive (RFC 7748 §6.1, RFC 5869)

    hub_to_node || node_to_hub = HKDF-SHA256(X25519(eph_hub, eph_node), 64 bytes,
                                 salt = SHA-256(challenge), info = KEYS || both ephemerals)

A key per direction means a frame reflected back to its sender does not verify; the
ephemeral keys are forgotten after the handshake, so a later theft of an identity key
does not let anyone forge or check frames of past sessions.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from medspace.hub.errors import ChannelError

HUB_OFFER = b"medspace-channel-v2 hub offer\n"
NODE_ACCEPT = b"medspace-channel-v2 node accept\n"
KEYS = b"medspace-channel-v2 keys\n"
EPHEMERAL_BYTES = 32


@dataclass(frozen=True)
class ChannelKeys:
    """The session id and the two directions' HMAC-SHA256 keys of one channel session."""

    session: str
    hub_to_node: bytes
    node_to_hub: bytes


def session_id(challenge: bytes) -> str:
    """The session id both sides derive from the challenge."""
    return hashlib.sha256(challenge).hexdigest()


def _transcript(label: bytes, *parts: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(struct.pack(">I", len(part)) + part)
    return label + digest.digest()


class Ephemeral:
    """One side's X25519 key pair for one handshake (never stored)."""

    def __init__(self) -> None:
        self._key = X25519PrivateKey.generate()
        self.public = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def keys(self, challenge: bytes, hub_ephemeral: bytes, node_ephemeral: bytes) -> ChannelKeys:
        """The session's keys, agreed with the other side's ephemeral public key; raises
        `ChannelError` for a malformed or low-order key."""
        if hub_ephemeral == node_ephemeral:
            raise ChannelError("the peer echoed this side's ephemeral key: refused")
        theirs = node_ephemeral if hub_ephemeral == self.public else hub_ephemeral
        if len(theirs) != EPHEMERAL_BYTES:
            raise ChannelError("the peer's ephemeral key is not a 32-byte X25519 key")
        try:
            shared = self._key.exchange(X25519PublicKey.from_public_bytes(theirs))
        except ValueError:
            raise ChannelError("the peer's ephemeral key is invalid (low-order point)") from None
        okm = HKDF(
            algorithm=hashes.SHA256(),
            length=64,
            salt=hashlib.sha256(challenge).digest(),
            info=KEYS + hub_ephemeral + node_ephemeral,
        ).derive(shared)
        return ChannelKeys(session_id(challenge), okm[:32], okm[32:])


def sign_offer(hub_key: Ed25519PrivateKey, challenge: bytes, hub_ephemeral: bytes) -> bytes:
    """The hub's signature binding its ephemeral key to this challenge."""
    return hub_key.sign(_transcript(HUB_OFFER, challenge, hub_ephemeral))


def verify_offer(
    hub_key: Ed25519PublicKey, challenge: bytes, hub_ephemeral: bytes, signature: bytes
) -> None:
    """Node side: the offer was made by the pinned hub key; raises `ChannelError`."""
    try:
        hub_key.verify(signature, _transcript(HUB_OFFER, challenge, hub_ephemeral))
    except InvalidSignature:
        raise ChannelError(
            "the hub's ephemeral key is not signed by the hub key this node pinned: "
            "refusing the connection (someone in between?)"
        ) from None


def sign_accept(
    node_key: Ed25519PrivateKey, challenge: bytes, hub_ephemeral: bytes, node_ephemeral: bytes
) -> bytes:
    """The node's signature binding both ephemeral keys to this challenge."""
    return node_key.sign(_transcript(NODE_ACCEPT, challenge, hub_ephemeral, node_ephemeral))


def verify_accept(
    node_key: Ed25519PublicKey,
    challenge: bytes,
    hub_ephemeral: bytes,
    node_ephemeral: bytes,
    signature: bytes,
) -> None:
    """Hub side: the node's registered key accepted these ephemeral keys; raises
    `ChannelError`."""
    try:
        node_key.verify(
            signature, _transcript(NODE_ACCEPT, challenge, hub_ephemeral, node_ephemeral)
        )
    except InvalidSignature:
        raise ChannelError(
            "the node's ephemeral key is not signed by its registered key: refused"
        ) from None


__all__ = [
    "ChannelKeys",
    "Ephemeral",
    "session_id",
    "sign_accept",
    "sign_offer",
    "verify_accept",
    "verify_offer",
]
