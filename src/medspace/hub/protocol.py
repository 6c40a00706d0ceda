"""The hub-node channel's wire format: signed, numbered envelopes over one WebSocket.

Handshake (plain JSON text frames):

    hub  -> node  {"type": "challenge", "challenge": b64, "origin", "hub_key": b64,
                   "log_key": vkey}
    node -> hub   {"type": "hello", "node": name, "signature": b64}

The challenge is `medspace.identity`'s single-use challenge; the node signs it with its
registered Ed25519 key. The node pins the hub's keys on first contact and refuses a hub
that later shows others. The session id is SHA-256 of the challenge, so envelopes of one
session mean nothing in another.

After the handshake every frame is an envelope

    {"s": session, "n": seq, "d": "h2n" | "n2h", "b": body, "sig": b64}

signed (Ed25519, by the hub key or the node key) over CONTEXT || RFC 8785 canonical JSON of
{"s", "n", "d", "b"}. Each side numbers its frames 0, 1, 2, ... and the receiver accepts
only the next number: a replayed, reordered, dropped or forged frame ends the session.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from medspace.hub.errors import ChannelError
from medspace.ledger import CanonicalError, canonical_bytes

CONTEXT = b"medspace-channel-v1\n"
HUB_TO_NODE = "h2n"
NODE_TO_HUB = "n2h"
MAX_FRAME = 4 * 1024 * 1024

# WebSocket close codes (4000-4999 are for applications).
CLOSE_AUTH = 4401
CLOSE_PROTOCOL = 4400
CLOSE_REPLACED = 4409


def session_id(challenge: bytes) -> str:
    """The session id both sides derive from the challenge."""
    return hashlib.sha256(challenge).hexdigest()


def b64(data: bytes) -> str:
    """Standard base64 text."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: object, what: str) -> bytes:
    """Decode standard base64; raises `ChannelError` naming `what`."""
    if not isinstance(text, str):
        raise ChannelError(f"{what} must be base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ChannelError(f"{what} is not valid base64") from None


def parse_frame(text: str | bytes) -> dict[str, Any]:
    """A frame as a JSON object; raises `ChannelError` for anything else."""
    if len(text) > MAX_FRAME:
        raise ChannelError(f"channel frame over {MAX_FRAME} bytes refused")
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise ChannelError("channel frame is not JSON") from None
    if not isinstance(value, dict):
        raise ChannelError("channel frame must be a JSON object")
    return value


def _signed_bytes(session: str, seq: int, direction: str, body: dict[str, Any]) -> bytes:
    try:
        return CONTEXT + canonical_bytes({"s": session, "n": seq, "d": direction, "b": body})
    except CanonicalError as exc:
        raise ChannelError(f"channel message is not canonical JSON: {exc}") from None


class Sealer:
    """Numbers and signs outgoing envelopes of one session in one direction."""

    def __init__(self, key: Ed25519PrivateKey, session: str, direction: str) -> None:
        self._key = key
        self._session = session
        self._direction = direction
        self._next = 0

    def seal(self, body: dict[str, Any]) -> str:
        """The next envelope for `body`, as frame text."""
        seq = self._next
        self._next += 1
        signature = self._key.sign(_signed_bytes(self._session, seq, self._direction, body))
        return json.dumps(
            {"s": self._session, "n": seq, "d": self._direction, "b": body, "sig": b64(signature)},
            separators=(",", ":"),
            ensure_ascii=False,
        )


class Opener:
    """Checks incoming envelopes of one session: signature, session, direction, order."""

    def __init__(self, key: Ed25519PublicKey, session: str, direction: str) -> None:
        self._key = key
        self._session = session
        self._direction = direction
        self._expected = 0

    def open(self, text: str | bytes) -> dict[str, Any]:
        """The body of the next envelope; raises `ChannelError` if the frame is not the
        expected next one, correctly signed, of this session and direction."""
        frame = parse_frame(text)
        if set(frame) != {"s", "n", "d", "b", "sig"}:
            raise ChannelError("channel envelope must have exactly s, n, d, b and sig")
        seq, body = frame["n"], frame["b"]
        if frame["s"] != self._session:
            raise ChannelError("channel envelope belongs to another session (replay refused)")
        if frame["d"] != self._direction:
            raise ChannelError("channel envelope travels the wrong way (reflection refused)")
        if type(seq) is not int or not isinstance(body, dict):
            raise ChannelError("channel envelope has a malformed number or body")
        if seq != self._expected:
            what = "replayed" if seq < self._expected else "out of order"
            raise ChannelError(
                f"channel envelope {seq} is {what}; expected {self._expected}: session closed"
            )
        signature = unb64(frame["sig"], "envelope signature")
        try:
            self._key.verify(signature, _signed_bytes(self._session, seq, self._direction, body))
        except InvalidSignature:
            raise ChannelError(
                "channel envelope signature does not verify: session closed"
            ) from None
        self._expected += 1
        return body
