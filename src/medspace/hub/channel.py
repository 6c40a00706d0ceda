"""The hub's end of the node channel: authenticated sessions and request/reply over them.

A node dials the hub (hospital firewalls allow no inbound connections), answers a
challenge with its registered key, then receives requests (tasks, checkpoints to cosign,
pings) and sends replies. Every request has a deadline; a node that is not connected, or
that drops its connection while a request is open, is reported *missing* at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from medspace.errors import MedSpaceError
from medspace.hub.core import HubCore
from medspace.hub.errors import ChannelError
from medspace.hub.handshake import Ephemeral, sign_offer, verify_accept
from medspace.hub.protocol import (
    CLOSE_AUTH,
    CLOSE_PROTOCOL,
    CLOSE_REPLACED,
    HUB_TO_NODE,
    NODE_TO_HUB,
    Opener,
    Outbox,
    Sealer,
    b64,
    parse_frame,
    unb64,
)
from medspace.identity import AuthError, public_key_text, verify_challenge_response
from medspace.policy import NodePolicy, ProjectError

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 30.0
MAX_REPLY_ENTRIES = 128
"""Ledger entries one node reply may carry (its own few, and up to 100 it queued while
the hub was away); more are refused unread: checking their signatures costs the hub."""


class NodeMissing(ChannelError):
    """The node is not connected, dropped its connection or did not answer in time."""


class NodeSession:
    """One authenticated connection of one node."""

    def __init__(self, node: str, websocket: WebSocket, sealer: Sealer, opener: Opener) -> None:
        self.node = node
        self._ws = websocket
        self._outbox = Outbox(sealer, websocket.send_text, self._lost)
        self._opener = opener
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.closed = asyncio.Event()
        self._closing: asyncio.Task[None] | None = None  # a close after a failed send

    def send(self, body: dict[str, Any]) -> None:
        """Queue one message; it leaves with the others queued in this loop turn, in
        order. If the connection fails, every open request fails (`NodeMissing`)."""
        self._outbox.put(body)

    def open(self, text: str) -> list[dict[str, Any]]:
        """The messages of the node's next frame; raises `ChannelError`."""
        return self._opener.open(text)

    def _lost(self, error: BaseException) -> None:
        """A send failed: the connection is unusable. Fail what waits on it and close it,
        so that the node reconnects."""
        log.warning("sending to node %s failed (%s); closing its channel", self.node, error)
        self.fail_all()
        self._closing = asyncio.get_running_loop().create_task(
            self.close(CLOSE_PROTOCOL, "sending failed; reconnect")
        )

    async def request(self, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send a request and wait for its reply; raises `NodeMissing` on disconnect or
        deadline."""
        if self.closed.is_set():
            raise NodeMissing(f"node {self.node} is not connected")
        request_id = secrets.token_hex(8)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            self.send({**body, "id": request_id})
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise NodeMissing(
                f"node {self.node} did not answer within {timeout:g} s; it is reported missing"
            ) from None
        finally:
            self._pending.pop(request_id, None)

    def deliver(self, body: dict[str, Any]) -> None:
        """Hand a reply to the request waiting for it (unknown replies are dropped)."""
        future = self._pending.get(str(body.get("reply_to")))
        if future is not None and not future.done():
            future.set_result(body)

    def fail_all(self) -> None:
        """Fail every open request: the node is gone."""
        self.closed.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(
                    NodeMissing(f"node {self.node} disconnected; it is reported missing")
                )

    async def close(self, code: int, reason: str) -> None:
        """Close the connection (errors while closing are ignored)."""
        with contextlib.suppress(RuntimeError, OSError):
            await self._ws.close(code=code, reason=reason[:120])


class ChannelHub:
    """All node sessions of a hub."""

    def __init__(self, core: HubCore) -> None:
        self._core = core
        self.sessions: dict[str, NodeSession] = {}
        self.on_connect: list[Callable[[str], Coroutine[Any, Any, None]]] = []
        self._jobs: set[asyncio.Task[None]] = set()
        # Each connected node's signed agreement-key announcement (secure aggregation),
        # checked against its registered identity key; forgotten when it disconnects.
        self._announcements: dict[str, dict[str, Any]] = {}

    def connected(self) -> list[str]:
        """Names of the nodes connected now, sorted."""
        return sorted(n for n, s in self.sessions.items() if not s.closed.is_set())

    async def request(self, node: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send `body` to `node` and return its reply; raises `NodeMissing`."""
        session = self.sessions.get(node)
        if session is None:
            raise NodeMissing(f"node {node} is not connected; it is reported missing")
        return await session.request(body, timeout)

    async def serve(self, websocket: WebSocket) -> None:
        """Run one node connection: handshake, then read replies until it closes."""
        await websocket.accept()
        try:
            session = await asyncio.wait_for(self._handshake(websocket), HANDSHAKE_TIMEOUT)
        except (AuthError, ChannelError, ProjectError) as error:
            log.info("node channel refused: %s", error)
            await _close(websocket, CLOSE_AUTH, str(error))
            return
        except (TimeoutError, WebSocketDisconnect):
            await _close(websocket, CLOSE_PROTOCOL, "handshake not completed")
            return
        previous = self.sessions.get(session.node)
        self.sessions[session.node] = session
        if previous is not None:
            previous.fail_all()
            await previous.close(CLOSE_REPLACED, "replaced by a newer connection")
        for callback in self.on_connect:
            job: asyncio.Task[None] = asyncio.create_task(callback(session.node))
            self._jobs.add(job)
            job.add_done_callback(self._jobs.discard)
        try:
            while True:
                text = await websocket.receive_text()
                for body in session.open(text):
                    if body.get("type") == "reply":
                        session.deliver(body)
                    elif body.get("type") == "policy":
                        await self._store_policy(session.node, body)
                    elif body.get("type") == "announce":
                        await self._store_announcement(session.node, body)
                    else:
                        raise ChannelError("unknown message type from node")
        except ChannelError as error:
            log.warning("node %s channel closed: %s", session.node, error)
            session.fail_all()
            await session.close(CLOSE_PROTOCOL, str(error))
        except (WebSocketDisconnect, RuntimeError, OSError):
            session.fail_all()
        finally:
            session.fail_all()
            if self.sessions.get(session.node) is session:
                del self.sessions[session.node]
                self._announcements.pop(session.node, None)

    async def _handshake(self, websocket: WebSocket) -> NodeSession:
        core = self._core
        challenge = await asyncio.to_thread(core.registry.new_challenge)
        ephemeral = Ephemeral()
        await websocket.send_json(
            {
                "type": "challenge",
                "challenge": b64(challenge),
                "origin": core.config.origin,
                "hub_key": public_key_text(core.hub_key.public_key()),
                "log_key": core.log_signer.verifier.vkey,
                "ephemeral": b64(ephemeral.public),
                "key_signature": b64(sign_offer(core.hub_key, challenge, ephemeral.public)),
            }
        )
        hello = parse_frame(await websocket.receive_text())
        node = hello.get("node")
        if hello.get("type") != "hello" or not isinstance(node, str):
            raise ChannelError("expected a hello naming the node")
        signature = unb64(hello.get("signature"), "challenge signature")
        node_ephemeral = unb64(hello.get("ephemeral"), "node ephemeral key")
        key_signature = unb64(hello.get("key_signature"), "ephemeral key signature")
        await asyncio.to_thread(
            verify_challenge_response, core.registry, node, challenge, signature
        )
        node_key = await asyncio.to_thread(core.registry.public_key, node)
        verify_accept(node_key, challenge, ephemeral.public, node_ephemeral, key_signature)
        keys = ephemeral.keys(challenge, ephemeral.public, node_ephemeral)
        sealer = Sealer(keys.hub_to_node, keys.session, HUB_TO_NODE)
        opener = Opener(keys.node_to_hub, keys.session, NODE_TO_HUB)
        result = NodeSession(node, websocket, sealer, opener)
        result.send({"type": "welcome", "node": node})
        return result

    async def _store_policy(self, node: str, body: dict[str, Any]) -> None:
        try:
            policy = NodePolicy.parse(body.get("policy"))
        except ProjectError as error:
            raise ChannelError(f"node announced an invalid standing policy: {error}") from None
        if policy.node != node:
            raise ChannelError("a node may announce only its own standing policy")
        await asyncio.to_thread(self._core.set_node_policy, policy)

    # -- agreement-key announcements (federated analytics) ------------------------------

    async def _store_announcement(self, node: str, body: dict[str, Any]) -> None:
        """Keep `node`'s announcement if it verifies against the node's registered key."""
        from medspace.analytics.secagg import Announcement, SecAggError, verify_announcement

        try:
            announcement = Announcement.from_dict(body.get("announcement"))
            if announcement.node != node:
                raise ChannelError("a node may announce only its own agreement key")
            identity = await asyncio.to_thread(self._core.registry.public_key, node)
            verify_announcement(announcement, identity)
        except SecAggError as error:
            raise ChannelError(
                f"node sent an invalid agreement-key announcement: {error}"
            ) from None
        self._announcements[node] = {
            "announcement": announcement.to_dict(),
            "identity_key": public_key_text(identity),
        }

    def announcement(self, node: str) -> dict[str, Any] | None:
        """`node`'s verified announcement with its registered identity key (what peers
        need to check it themselves), or None while it has not announced."""
        return self._announcements.get(node)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError, OSError, MedSpaceError):
        await websocket.close(code=code, reason=reason[:120])
