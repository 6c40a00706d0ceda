"""The channel's envelopes and handshake, adversarially: tampering, replay, reordering,
reflection, another session's key, swapped ephemeral keys, and the outbox's batching."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from medspace.hub.errors import ChannelError
from medspace.hub.handshake import (
    ChannelKeys,
    Ephemeral,
    sign_accept,
    sign_offer,
    verify_accept,
    verify_offer,
)
from medspace.hub.protocol import HUB_TO_NODE, NODE_TO_HUB, TAG_CHARS, Opener, Outbox, Sealer

CHALLENGE = b"medspace-node-challenge-v1 example nonce"


def _agree() -> tuple[ChannelKeys, ChannelKeys]:
    """Both ends of one handshake: (the hub's keys, the node's keys)."""
    hub, node = Ephemeral(), Ephemeral()
    return (
        hub.keys(CHALLENGE, hub.public, node.public),
        node.keys(CHALLENGE, hub.public, node.public),
    )


def _pair(keys: ChannelKeys) -> tuple[Sealer, Opener]:
    return (
        Sealer(keys.node_to_hub, keys.session, NODE_TO_HUB),
        Opener(keys.node_to_hub, keys.session, NODE_TO_HUB),
    )


def test_both_ends_agree_on_the_session_keys_and_directions_differ() -> None:
    hub, node = _agree()
    assert hub == node
    assert hub.hub_to_node != hub.node_to_hub
    other, _ = _agree()
    assert other.hub_to_node != hub.hub_to_node  # fresh ephemeral keys, fresh session keys


@given(st.lists(st.dictionaries(st.text(max_size=8), st.integers() | st.text()), min_size=1))
def test_sealed_bodies_open_in_order(bodies: list[dict[str, object]]) -> None:
    keys, _ = _agree()
    sealer, opener = _pair(keys)
    assert opener.open(sealer.seal(bodies)) == bodies
    assert opener.open(sealer.seal([{"next": True}])) == [{"next": True}]


def test_an_altered_body_does_not_verify() -> None:
    keys, _ = _agree()
    sealer, opener = _pair(keys)
    frame = sealer.seal([{"type": "reply", "status": "refused"}])
    altered = frame.replace('"refused"', '"ok"')
    with pytest.raises(ChannelError, match="does not verify"):
        opener.open(altered)


def test_a_frame_with_a_forged_tag_does_not_verify() -> None:
    keys, _ = _agree()
    sealer, opener = _pair(keys)
    frame = sealer.seal([{"type": "reply"}])
    forged = base64.b64encode(bytes(32)).decode() + frame[TAG_CHARS:]
    with pytest.raises(ChannelError, match="does not verify"):
        opener.open(forged)


def test_a_replayed_frame_ends_the_session() -> None:
    keys, _ = _agree()
    sealer, opener = _pair(keys)
    frame = sealer.seal([{"type": "reply"}])
    opener.open(frame)
    with pytest.raises(ChannelError, match="replayed"):
        opener.open(frame)


def test_a_reordered_frame_ends_the_session() -> None:
    keys, _ = _agree()
    sealer, opener = _pair(keys)
    sealer.seal([{"n": 0}])
    with pytest.raises(ChannelError, match="out of order"):
        opener.open(sealer.seal([{"n": 1}]))


def test_a_frame_reflected_to_its_sender_does_not_verify() -> None:
    keys, _ = _agree()
    hub_sealer = Sealer(keys.hub_to_node, keys.session, HUB_TO_NODE)
    hub_opener = Opener(keys.node_to_hub, keys.session, NODE_TO_HUB)
    with pytest.raises(ChannelError, match="does not verify"):
        hub_opener.open(hub_sealer.seal([{"type": "task"}]))


def test_a_frame_of_another_session_does_not_verify() -> None:
    first, _ = _agree()
    second, _ = _agree()
    sealer = Sealer(first.node_to_hub, first.session, NODE_TO_HUB)
    opener = Opener(second.node_to_hub, second.session, NODE_TO_HUB)
    with pytest.raises(ChannelError, match="does not verify"):
        opener.open(sealer.seal([{"type": "reply"}]))


@pytest.mark.parametrize(
    "frame",
    [
        "no tag at all",  # not TAG.JSON
        "",  # empty
        "!" * TAG_CHARS + ".{}",  # the tag is not base64
    ],
)
def test_malformed_frames_are_refused(frame: str) -> None:
    keys, _ = _agree()
    _sealer, opener = _pair(keys)
    with pytest.raises(ChannelError):
        opener.open(frame)


def test_an_authenticated_frame_without_bodies_is_refused() -> None:
    keys, _ = _agree()
    sealer, opener = _pair(keys)
    with pytest.raises(ChannelError, match="malformed number or bodies"):
        opener.open(sealer.seal([]))


def test_the_node_refuses_an_offer_not_signed_by_the_pinned_hub_key() -> None:
    hub_key, impostor = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    ephemeral = Ephemeral()
    good = sign_offer(hub_key, CHALLENGE, ephemeral.public)
    verify_offer(hub_key.public_key(), CHALLENGE, ephemeral.public, good)
    swapped = Ephemeral().public  # someone in between swaps in their own key
    with pytest.raises(ChannelError, match="not signed by the hub key"):
        verify_offer(hub_key.public_key(), CHALLENGE, swapped, good)
    forged = sign_offer(impostor, CHALLENGE, swapped)
    with pytest.raises(ChannelError, match="not signed by the hub key"):
        verify_offer(hub_key.public_key(), CHALLENGE, swapped, forged)


def test_the_hub_refuses_a_node_ephemeral_key_its_node_did_not_sign() -> None:
    node_key = Ed25519PrivateKey.generate()
    hub, node = Ephemeral(), Ephemeral()
    signature = sign_accept(node_key, CHALLENGE, hub.public, node.public)
    verify_accept(node_key.public_key(), CHALLENGE, hub.public, node.public, signature)
    public = node_key.public_key()
    with pytest.raises(ChannelError, match="not signed by its registered key"):
        verify_accept(public, CHALLENGE, hub.public, Ephemeral().public, signature)
    with pytest.raises(ChannelError, match="not signed by its registered key"):
        verify_accept(public, b"another challenge", hub.public, node.public, signature)


def test_a_low_order_ephemeral_key_is_refused() -> None:
    hub = Ephemeral()
    with pytest.raises(ChannelError, match="low-order"):
        hub.keys(CHALLENGE, hub.public, bytes(32))
    with pytest.raises(ChannelError, match="32-byte"):
        hub.keys(CHALLENGE, hub.public, b"short")
    with pytest.raises(ChannelError, match="echoed"):  # its own key reflected back
        hub.keys(CHALLENGE, hub.public, hub.public)


def test_the_outbox_sends_what_one_loop_turn_queued_as_one_frame_in_order() -> None:
    keys, _ = _agree()
    sealer, opener = _pair(keys)
    sent: list[str] = []

    async def send_text(text: str) -> None:
        sent.append(text)

    async def main() -> None:
        outbox = Outbox(sealer, send_text, lambda error: None)
        for i in range(3):
            outbox.put({"i": i})
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        outbox.put({"i": 3})
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(main())
    assert [opener.open(frame) for frame in sent] == [[{"i": 0}, {"i": 1}, {"i": 2}], [{"i": 3}]]
    assert json.loads(sent[0][TAG_CHARS + 1 :])["n"] == 0


def test_the_outbox_reports_a_failed_send_and_drops_the_queue() -> None:
    keys, _ = _agree()
    sealer, _opener = _pair(keys)
    errors: list[BaseException] = []

    async def send_text(text: str) -> None:
        raise OSError("connection reset")

    async def main() -> None:
        outbox = Outbox(sealer, send_text, errors.append)
        outbox.put({"i": 0})
        outbox.put({"i": 1})
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(main())
    assert [type(e) for e in errors] == [OSError]


def test_a_failed_send_fails_the_open_requests_and_closes_the_channel() -> None:
    """A hub whose frame to a node cannot be sent must not keep a half-dead session: the
    waiting request is reported missing at once, and the connection is closed so that
    the node dials again."""
    from medspace.hub.channel import NodeMissing, NodeSession
    from medspace.hub.protocol import CLOSE_PROTOCOL

    class BrokenSocket:
        closed_with: int | None = None

        async def send_text(self, text: str) -> None:
            raise OSError("connection reset")

        async def close(self, code: int, reason: str) -> None:
            self.closed_with = code

    keys, _ = _agree()
    socket = BrokenSocket()

    async def main() -> None:
        session = NodeSession(
            "h1",
            socket,  # type: ignore[arg-type]
            Sealer(keys.hub_to_node, keys.session, HUB_TO_NODE),
            Opener(keys.node_to_hub, keys.session, NODE_TO_HUB),
        )
        with pytest.raises(NodeMissing, match="disconnected"):
            await session.request({"type": "ping"}, timeout=30)
        await asyncio.sleep(0)
        assert socket.closed_with == CLOSE_PROTOCOL
        with pytest.raises(NodeMissing, match="not connected"):
            await session.request({"type": "ping"}, timeout=30)

    asyncio.run(main())
