"""The hub-node channel's wire format: numbered, authenticated envelopes over one WebSocket.

Handshake (plain JSON text frames; keys agreed as `medspace.hub.handshake` says):

    hub  -> node  {"type": "challenge", "challenge": b64, "origin", "hub_key": b64,
                   "log_key": vkey, "ephemeral": b64, "key_signature": b64}
    node -> hub   {"type": "hello", "node": name, "signature": b64,
                   "ephemeral": b64, "key_signature": b64}

The challenge is `medspace.identity`'s single-use challenge; the node signs it with its
registered Ed25519 key. The node pins the hub's keys on first contact and refuses a hub
that later shows others. The session id is SHA-256 of the challenge.

After the handshake every frame is

    TAG "." {"s": session, "n": seq, "d": "h2n" | "n2h", "b": [body, ...]}

where TAG is base64 HMAC-SHA256, under the session key of that direction, over
CONTEXT || the exact JSON bytes that follow the dot (no re-encoding, so no canonical
form is needed). One frame carries the bodies its sender queued in one turn of its event
loop (`Outbox`), in order. Each side numbers its frames 0, 1, 2, ... and the receiver
accepts only the next number: a replayed, reordered, dropped, reflected or forged frame
ends the session. (Version 1 signed each frame with Ed25519 over canonical JSON: ~165 us
of CPU per frame at the two ends on the bench machine, against ~5 us for the MAC, which
authenticates the same between two ends that alone hold the key.)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from medspace.hub.errors import ChannelError

CONTEXT = b"medspace-channel-v2\n"
TAG_CHARS = 44  # base64 of a 32-byte HMAC-SHA256 tag
HUB_TO_NODE = "h2n"
NODE_TO_HUB = "n2h"
MAX_FRAME = 4 * 1024 * 1024

# WebSocket close codes (4000-4999 are for applications).
CLOSE_AUTH = 4401
CLOSE_PROTOCOL = 4400
CLOSE_REPLACED = 4409


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


def _tag(key: bytes, payload: bytes) -> bytes:
    return hmac.digest(key, CONTEXT + payload, hashlib.sha256)


class Sealer:
    """Numbers and authenticates outgoing envelopes of one session in one direction."""

    def __init__(self, key: bytes, session: str, direction: str) -> None:
        self._key = key
        self._session = session
        self._direction = direction
        self._next = 0

    def seal(self, bodies: Sequence[dict[str, Any]]) -> str:
        """The next envelope carrying `bodies` (in order), as frame text."""
        seq = self._next
        self._next += 1
        payload = json.dumps(
            {"s": self._session, "n": seq, "d": self._direction, "b": list(bodies)},
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return b64(_tag(self._key, payload.encode())) + "." + payload


class Opener:
    """Checks incoming envelopes of one session: tag, session, direction, order."""

    def __init__(self, key: bytes, session: str, direction: str) -> None:
        self._key = key
        self._session = session
        self._direction = direction
        self._expected = 0

    def open(self, text: str | bytes) -> list[dict[str, Any]]:
        """The bodies of the next envelope; raises `ChannelError` if the frame is not the
        expected next one, authenticated, of this session and direction."""
        if len(text) > MAX_FRAME:
            raise ChannelError(f"channel frame over {MAX_FRAME} bytes refused")
        raw = text.encode() if isinstance(text, str) else text
        if raw[TAG_CHARS : TAG_CHARS + 1] != b".":
            raise ChannelError("channel envelope must be TAG.JSON: session closed")
        tag = unb64(raw[:TAG_CHARS].decode("ascii", "replace"), "envelope tag")
        payload = raw[TAG_CHARS + 1 :]
        if not hmac.compare_digest(tag, _tag(self._key, payload)):
            raise ChannelError(
                "channel envelope does not verify under this session's key (forged, "
                "altered, from another session or reflected): session closed"
            )
        frame = parse_frame(payload)
        if set(frame) != {"s", "n", "d", "b"}:
            raise ChannelError("channel envelope must have exactly s, n, d and b")
        seq, bodies = frame["n"], frame["b"]
        if frame["s"] != self._session:
            raise ChannelError("channel envelope belongs to another session (replay refused)")
        if frame["d"] != self._direction:
            raise ChannelError("channel envelope travels the wrong way (reflection refused)")
        if type(seq) is not int or not isinstance(bodies, list) or not bodies:
            raise ChannelError("channel envelope has a malformed number or bodies")
        if not all(isinstance(body, dict) for body in bodies):
            raise ChannelError("channel envelope bodies must be JSON objects")
        if seq != self._expected:
            what = "replayed" if seq < self._expected else "out of order"
            raise ChannelError(
                f"channel envelope {seq} is {what}; expected {self._expected}: session closed"
            )
        self._expected += 1
        return bodies


class Outbox:
    """Sends what one side queues in one turn of its event loop as one envelope.

    Under load many requests (or replies) to the same peer are ready at once; sealing and
    sending them as one frame saves the per-frame work at both ends (a frame costs more
    than most bodies). A lone body goes out on the next loop turn, so nothing waits for
    company. Order is kept. A failed send is handed to `on_error` (the connection is
    gone; the owner fails what was waiting on it).
    """

    def __init__(
        self,
        sealer: Sealer,
        send_text: Callable[[str], Awaitable[None]],
        on_error: Callable[[BaseException], None],
    ) -> None:
        self._sealer = sealer
        self._send_text = send_text
        self._on_error = on_error
        self._bodies: list[dict[str, Any]] = []
        self._drain: asyncio.Task[None] | None = None

    def put(self, body: dict[str, Any]) -> None:
        """Queue `body` for the next envelope."""
        self._bodies.append(body)
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_task(self._send_queued())

    async def _send_queued(self) -> None:
        try:
            while self._bodies:
                bodies, self._bodies = self._bodies, []
                await self._send_text(self._sealer.seal(bodies))
        except Exception as error:  # the transport's errors vary by library
            self._bodies.clear()
            self._on_error(error)
        finally:
            self._drain = None
