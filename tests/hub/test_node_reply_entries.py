"""What the hub does with the ledger entries in a node's reply before checking any
signature: a reply with more than `MAX_REPLY_ENTRIES` is refused unread (checking a
flood of signatures would cost the hub), and the node is reported, not silently
dropped: left out of the query, or listed as unrecorded under a lookup."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medspace.hub import HubCore, init_hub
from medspace.hub.analytics_session import NodeSession
from medspace.hub.channel import MAX_REPLY_ENTRIES
from medspace.hub.lookup import LookupHub
from medspace.ledger import Entry, EntrySigner, EntryType, utc_timestamp

JUNK = base64.b64encode(b"not an entry").decode()


def _signed_by_h1() -> str:
    """A well-formed entry naming h1 as actor (the signature is checked later, at the
    append: a flood of these would all be checked)."""
    entry = Entry(type=EntryType.COMPUTE, actor="h1", time=utc_timestamp(), node="h1")
    body = EntrySigner(Ed25519PrivateKey.generate()).sign(entry).body
    return base64.b64encode(body).decode()


class OneReply:
    """A channel whose every request gets `reply`."""

    def __init__(self, reply: dict[str, Any]) -> None:
        self.reply = reply

    async def request(self, node: str, message: object, timeout: float) -> dict[str, Any]:
        return self.reply


def _core(tmp_path: Path) -> HubCore:
    init_hub(tmp_path / "hub")
    return HubCore(tmp_path / "hub")


def test_a_query_leaves_out_a_node_that_floods_entries(tmp_path: Path) -> None:
    core = _core(tmp_path)
    session = NodeSession(core, cast(Any, OneReply({})))
    try:
        flood = [_signed_by_h1()] * (MAX_REPLY_ENTRIES + 1)
        assert asyncio.run(session._take_entries("h1", flood[:MAX_REPLY_ENTRIES]))
        session._pending.clear()
        kept = asyncio.run(session._take_entries("h1", flood))
    finally:
        core.close()
    assert not kept
    assert session.rows["h1"].status == "rejected" and session.rejections == {"h1": "bad-entries"}
    assert session._pending == []  # nothing queued for a signature check


def test_a_lookup_lists_a_node_that_floods_entries_as_unrecorded(tmp_path: Path) -> None:
    core = _core(tmp_path)
    flood = {"status": "ok", "answer": "no-match", "entries": [JUNK] * (MAX_REPLY_ENTRIES + 1)}
    hub = LookupHub(core, cast(Any, OneReply(flood)))
    closing = core.hub_signer.sign(
        Entry(type=EntryType.LOOKUP, actor="hub", time=utc_timestamp(), details={"count": 1})
    )
    try:
        line, bodies = asyncio.run(hub._ask("h1", "key", {}, 1.0))
        size_before = core.log.size()
        unrecorded = hub._append({"h1": bodies}, closing)
        size_after = core.log.size()
    finally:
        core.close()
    assert line["status"] == "ok" and len(bodies) == 1
    assert unrecorded == ["h1"]
    assert size_after == size_before + 1  # the hub's own closing entry only
