"""The hub's checkpoint loop: sign a checkpoint while entries arrive (at least once a
second) and ask every connected node's witness to cosign it over the channel.

Each witness gets a consistency proof from the size it last cosigned; a witness that
answers with another size gets one retry from there (C2SP tlog-witness style). A witness
that reports a fork is logged loudly and never asked to cosign that history again in
this process. A checkpoint is final when the quorum has cosigned (see `HubCore.quorum`).
"""

from __future__ import annotations

import asyncio
import logging

from medspace.errors import MedSpaceError
from medspace.hub.channel import ChannelHub, NodeMissing
from medspace.hub.core import HubCore
from medspace.hub.protocol import b64
from medspace.ledger import Cosignature, CosignatureVerifier, SignedCheckpoint
from medspace.ledger.note import NoteSignature

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 0.5
COSIGN_TIMEOUT = 15.0


class Checkpointer:
    """Issues checkpoints and collects cosignatures; run `run()` as a background task."""

    def __init__(
        self, core: HubCore, channel: ChannelHub, interval: float = DEFAULT_INTERVAL
    ) -> None:
        self._core = core
        self._channel = channel
        self._interval = interval
        self._witness_sizes: dict[str, int] = {}
        self._inflight: set[str] = set()
        self.forks: dict[str, str] = {}
        self._jobs: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Tick forever (cancel to stop); a failing tick is logged and retried."""
        while True:
            try:
                await self.tick()
            except MedSpaceError as error:
                log.warning("checkpoint tick failed: %s", error)
            await asyncio.sleep(self._interval)

    async def tick(self) -> SignedCheckpoint | None:
        """Sign a new checkpoint if the log grew, and ask missing witnesses to cosign."""
        core = self._core
        size = await asyncio.to_thread(core.log.size)
        if size == 0:
            return None
        latest = await asyncio.to_thread(core.log.latest_checkpoint)
        if latest is None or latest.checkpoint.size < size:
            latest = await asyncio.to_thread(core.log.checkpoint, core.log_signer)
        witnesses = {w.name: w for w in await asyncio.to_thread(core.witnesses)}
        for node in self._channel.connected():
            witness = witnesses.get(node)
            if witness is None or node in self._inflight or node in self.forks:
                continue
            if latest.cosignatures(witness):
                continue
            self._inflight.add(node)
            job = asyncio.create_task(self._cosign(node, witness, latest))
            self._jobs.add(job)
            job.add_done_callback(self._jobs.discard)
        return latest

    async def _cosign(
        self, node: str, witness: CosignatureVerifier, signed: SignedCheckpoint
    ) -> None:
        core = self._core
        size = signed.checkpoint.size
        old = self._witness_sizes.get(node, 0)
        try:
            for _ in range(2):
                if old > size:
                    return
                proof = await asyncio.to_thread(core.log.consistency_proof, old, size)
                reply = await self._channel.request(
                    node,
                    {
                        "type": "cosign",
                        "checkpoint": signed.to_text(),
                        "old_size": old,
                        "proof": [b64(p) for p in proof],
                    },
                    COSIGN_TIMEOUT,
                )
                if reply.get("status") == "ok":
                    line = str(reply.get("cosignature", "")).rstrip("\n")
                    cosignature = Cosignature.from_note_signature(NoteSignature.from_line(line))
                    await asyncio.to_thread(core.log.add_cosignature, size, cosignature, witness)
                    self._witness_sizes[node] = size
                    return
                if reply.get("status") == "state-mismatch":
                    witness_size = reply.get("witness_size")
                    if type(witness_size) is not int or witness_size < 0:
                        return
                    old = witness_size
                    continue
                if reply.get("status") == "fork":
                    self.forks[node] = str(reply.get("reason", "fork"))
                    log.error(
                        "witness %s refused checkpoint %d as a FORK of the history it "
                        "cosigned: the log was rewritten or showed different histories",
                        node,
                        size,
                    )
                return
        except NodeMissing:
            return
        except MedSpaceError as error:
            log.warning("cosignature from %s not stored: %s", node, error)
        finally:
            self._inflight.discard(node)
