"""`medspace node serve`: the node's outbound, persistent, authenticated channel to the hub.

The node dials the hub (it accepts no inbound connections), answers the hub's challenge
with its Ed25519 identity key, pins the hub's keys on first contact, announces its
standing policy, then serves requests (tasks, checkpoints to cosign, pings) until the
connection ends, and reconnects with exponential backoff (0.5 s doubling to 30 s, with
jitter). See `medspace.hub.protocol` for the wire format.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

import medspace.aio
from medspace.errors import MedSpaceError
from medspace.hub.errors import ChannelError
from medspace.hub.handshake import Ephemeral, sign_accept, verify_offer
from medspace.hub.protocol import (
    HUB_TO_NODE,
    MAX_FRAME,
    NODE_TO_HUB,
    Opener,
    Outbox,
    Sealer,
    b64,
    parse_frame,
    unb64,
)
from medspace.identity import AuthError, parse_public_key, sign_challenge
from medspace.node.analytics_worker import AnalyticsWorker
from medspace.node.directory import open_node
from medspace.node.standing import HubPin, read_pin, write_pin
from medspace.node.worker import NodeWorker

log = logging.getLogger(__name__)

MIN_BACKOFF = 0.5
MAX_BACKOFF = 30.0


def channel_url(hub_url: str) -> str:
    """The WebSocket URL of a hub's node channel (http -> ws, https -> wss)."""
    base = hub_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :] + "/channel"
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :] + "/channel"
    raise ChannelError("the hub URL must start with http:// or https://")


def _check_pin(directory: Path, frame: dict[str, Any]) -> HubPin:
    shown = HubPin(str(frame.get("origin")), str(frame.get("hub_key")), str(frame.get("log_key")))
    pinned = read_pin(directory)
    if pinned is None:
        parse_public_key(shown.hub_key)  # refuse junk before pinning it
        write_pin(directory, shown)
        return shown
    if pinned != shown:
        raise ChannelError(
            "the hub shows other keys than the ones this node pinned on first contact; "
            "refusing it (if the hub was re-created on purpose, remove hub-pin.json)"
        )
    return pinned


class NodeService:
    """A node's channel client. `run()` keeps a session up until `stop()` is called."""

    def __init__(
        self,
        directory: Path,
        hub_url: str,
        *,
        ca_file: Path | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.directory = Path(directory).absolute()
        self.url = channel_url(hub_url)
        self._ssl: ssl.SSLContext | None = None
        if self.url.startswith("wss://"):
            self._ssl = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._node = open_node(self.directory)
        self._worker: NodeWorker | None = None
        self._lookup: Any = None  # medspace.lookup.responder.LookupResponder, made on use
        self._analytics: AnalyticsWorker | None = None
        self._stop = asyncio.Event()
        self._on_event = on_event or (lambda _event: None)
        self._closing: asyncio.Task[None] | None = None  # a close after a failed send
        self.sessions = 0

    def stop(self) -> None:
        """Ask `run()` to end after the current session."""
        self._stop.set()

    async def run(self) -> None:
        """Connect, serve, reconnect with backoff until stopped."""
        delay = MIN_BACKOFF
        try:
            while not self._stop.is_set():
                try:
                    async with connect(
                        self.url,
                        ssl=self._ssl,
                        max_size=MAX_FRAME,
                        open_timeout=10,
                        ping_interval=20,
                        ping_timeout=20,
                        compression=None,  # see the hub's ws_per_message_deflate
                    ) as websocket:
                        served = await self._session(websocket)
                        if served:
                            delay = MIN_BACKOFF
                except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as error:
                    self._on_event(f"hub unreachable ({type(error).__name__}); retrying")
                except (ChannelError, AuthError) as error:
                    self._on_event(f"channel refused: {error}")
                    log.warning("channel refused: %s", error)
                if self._stop.is_set():
                    break
                pause = delay * (0.5 + random.random() / 2)
                delay = min(delay * 2, MAX_BACKOFF)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), pause)
        finally:
            if self._analytics is not None:
                self._analytics.close()
            if self._worker is not None:
                self._worker.close()
            if self._lookup is not None:
                self._lookup.log.close()
            self._node.close()

    async def _session(self, websocket: ClientConnection) -> bool:
        frame = parse_frame(await websocket.recv())
        if frame.get("type") != "challenge":
            raise ChannelError("the hub did not open with a challenge")
        challenge = unb64(frame.get("challenge"), "challenge")
        hub_ephemeral = unb64(frame.get("ephemeral"), "hub ephemeral key")
        verify_offer(  # before pinning: a first contact pins only a key that signed its offer
            parse_public_key(str(frame.get("hub_key"))),
            challenge,
            hub_ephemeral,
            unb64(frame.get("key_signature"), "hub ephemeral key signature"),
        )
        pin = await asyncio.to_thread(_check_pin, self.directory, frame)
        if self._worker is None:
            self._worker = await asyncio.to_thread(NodeWorker, self._node, pin)
        worker = self._worker
        ephemeral = Ephemeral()
        await websocket.send(
            json.dumps(
                {
                    "type": "hello",
                    "node": worker.name,
                    "signature": b64(sign_challenge(worker.identity_key, challenge)),
                    "ephemeral": b64(ephemeral.public),
                    "key_signature": b64(
                        sign_accept(worker.identity_key, challenge, hub_ephemeral, ephemeral.public)
                    ),
                }
            )
        )
        keys = ephemeral.keys(challenge, hub_ephemeral, ephemeral.public)
        opener = Opener(keys.hub_to_node, keys.session, HUB_TO_NODE)
        try:
            welcome = opener.open(await websocket.recv())
        except websockets.exceptions.ConnectionClosed as closed:
            raise ChannelError(
                f"the hub refused this node: {closed.rcvd.reason if closed.rcvd else 'closed'}"
            ) from None
        if welcome[0].get("type") != "welcome":
            raise ChannelError("the hub did not welcome this node")

        def lost(error: BaseException) -> None:
            # Closing ends the receive loop below; the service then reconnects.
            self._on_event(f"sending to the hub failed ({type(error).__name__}); reconnecting")
            self._closing = asyncio.get_running_loop().create_task(websocket.close())

        outbox = Outbox(Sealer(keys.node_to_hub, keys.session, NODE_TO_HUB), websocket.send, lost)
        outbox.put({"type": "policy", "policy": worker.policy.model_dump(mode="json")})
        # Emergency lookup: make the responder now (it loads the PHI scrubber), so that
        # the first lookup answers as fast as the others.
        try:
            await asyncio.to_thread(self._lookup_responder, worker)
        except MedSpaceError as error:
            self._on_event(f"lookup responder not ready ({error}); it retries on use")
        # Federated analytics: the signed agreement key peers mask against. A node that
        # cannot announce still serves everything else; the hub leaves it out of queries.
        try:
            analytics = await asyncio.to_thread(self._analytics_worker, worker)
            outbox.put({"type": "announce", "announcement": analytics.announcement()})
        except MedSpaceError as error:
            self._on_event(f"no agreement-key announcement ({error}); analytics disabled")
        self.sessions += 1
        self._on_event("connected")
        running: set[asyncio.Task[None]] = set()
        closer = asyncio.create_task(self._close_on_stop(websocket))
        try:
            while True:
                try:
                    text = await websocket.recv()
                except websockets.exceptions.ConnectionClosed:
                    if not self._stop.is_set():
                        self._on_event("disconnected")
                    return True
                for body in opener.open(text):
                    job = asyncio.create_task(self._handle(worker, body, outbox))
                    running.add(job)
                    job.add_done_callback(running.discard)
        finally:
            closer.cancel()
            for job in running:
                job.cancel()

    async def _close_on_stop(self, websocket: ClientConnection) -> None:
        await self._stop.wait()
        await websocket.close()

    def _analytics_worker(self, worker: NodeWorker) -> AnalyticsWorker:
        """The node's federated-analytics handler (made once, kept across sessions)."""
        if self._analytics is None:
            self._analytics = AnalyticsWorker(worker)
        return self._analytics

    def _lookup_responder(self, worker: NodeWorker) -> Any:
        """The node's emergency-lookup responder (made once, kept across sessions)."""
        if self._lookup is None:
            from medspace.lookup.responder import LookupResponder

            self._lookup = LookupResponder(self._node, parse_public_key(worker.pin.hub_key))
        return self._lookup

    def _answer_lookup(self, worker: NodeWorker, body: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = self._lookup_responder(worker).handle(body)
        return reply

    async def _handle(self, worker: NodeWorker, body: dict[str, Any], outbox: Outbox) -> None:
        kind = body.get("type")
        request_id = str(body.get("id", ""))
        try:
            if kind == "ping":
                reply: dict[str, Any] = {"type": "reply", "status": "ok"}
            elif kind == "task":
                reply = await asyncio.to_thread(worker.handle_task, body)
                self._on_event(f"task {reply.get('status')}")
            elif kind == "cosign":
                reply = await asyncio.to_thread(worker.handle_cosign, body)
            elif kind == "project":
                reply = await asyncio.to_thread(worker.handle_project, body)
                self._on_event(f"project update {reply.get('status')}")
            elif kind == "lookup":
                # Inline, like a light analytics step below: an index probe and a few
                # small reads and writes, a few ms. A hop to a worker thread and back cost
                # more CPU than that (old and new code in turn: ~36 -> ~30 ms per lookup
                # over the 10 bench nodes).
                reply = self._answer_lookup(worker, body)
                self._on_event(f"lookup {reply.get('status')} {reply.get('answer', '')}".rstrip())
            elif kind == "analytics":
                analytics = self._analytics_worker(worker)
                # A light step (an unmasking round, a small statistic of a session) is
                # answered on the event loop: a hop to a worker thread and back cost the
                # node more CPU than the step (measured: 17-20 -> 13-16 ms per session
                # mean over the 5 bench nodes). Heavier work (a prepare's SQL, a
                # regression step, a large table) runs in a thread, so it never holds
                # up a lookup.
                if analytics.light(body):
                    reply = analytics.handle(body)
                else:
                    reply = await asyncio.to_thread(analytics.handle, body)
                if reply.get("status") != "ok" or body.get("op") not in ("mask", "unmask"):
                    # A session's statistics are two masking rounds each, many a second:
                    # their ledger entries record them; the console shows the rest.
                    self._on_event(f"analytics {body.get('op')} {reply.get('status')}")
            else:
                reply = {"type": "reply", "status": "error", "reason": "unknown request type"}
        except MedSpaceError as error:
            reply = {"type": "reply", "status": "error", "reason": str(error)[:300]}
        outbox.put({**reply, "reply_to": request_id})


def serve(
    directory: Path,
    hub_url: str,
    *,
    ca_file: Path | None = None,
    on_event: Callable[[str], None] | None = None,
) -> None:
    """Run the node service in the foreground until interrupted (Ctrl-C / SIGTERM)."""
    import signal

    from medspace.blas import single_threaded_blas

    single_threaded_blas()  # before the first analytics query imports numpy

    async def main() -> None:
        service = NodeService(directory, hub_url, ca_file=ca_file, on_event=on_event)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, service.stop)
        await service.run()

    medspace.aio.run(main())
