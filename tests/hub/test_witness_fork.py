"""A hub that shows two different histories is caught by the node witnesses: a node that
cosigned one history refuses a checkpoint of another, over the same request path the
channel uses (`NodeWorker.handle_cosign`)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medspace.identity import public_key_text
from medspace.ledger import Entry, EntrySigner, KeyRing, Log, NoteSigner, utc_timestamp
from medspace.node import init_node, open_node
from medspace.node.standing import HubPin
from medspace.node.worker import NodeWorker

ORIGIN = "medspace-hub/test"


def _log(path: Path, signer: EntrySigner, ring: KeyRing, kinds: list[str]) -> Log:
    log = Log.create(sa.create_engine(f"sqlite:///{path}"), ORIGIN, ring)
    log.append(
        [
            signer.sign(Entry(type=k, actor="hub", time=utc_timestamp(datetime.now(UTC))))
            for k in kinds
        ]
    )
    return log


def _request(log: Log, key: NoteSigner, old_size: int) -> dict[str, object]:
    signed = log.checkpoint(key)
    proof = log.consistency_proof(old_size, signed.checkpoint.size)
    return {
        "checkpoint": signed.to_text(),
        "old_size": old_size,
        "proof": [base64.b64encode(p).decode() for p in proof],
    }


def test_witness_refuses_a_second_history_and_keeps_cosigning_the_first(tmp_path: Path) -> None:
    hub_key, entry_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    log_key = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    signer = EntrySigner(entry_key)
    ring = KeyRing()
    ring.add("hub", entry_key.public_key())
    honest = _log(tmp_path / "a.db", signer, ring, ["request", "approval"])
    forked = _log(tmp_path / "b.db", signer, ring, ["request", "denial"])
    init_node(tmp_path / "h1", "h1")
    pin = HubPin(ORIGIN, public_key_text(hub_key), log_key.verifier.vkey)
    with open_node(tmp_path / "h1") as node:
        worker = NodeWorker(node, pin)
        try:
            assert worker.handle_cosign(_request(honest, log_key, 0))["status"] == "ok"
            refused = worker.handle_cosign(_request(forked, log_key, 2))
            assert refused["status"] == "fork"
            forked.append([signer.sign(Entry(type="task", actor="hub", time=utc_timestamp()))])
            assert worker.handle_cosign(_request(forked, log_key, 2))["status"] == "fork"
            honest.append([signer.sign(Entry(type="task", actor="hub", time=utc_timestamp()))])
            assert worker.handle_cosign(_request(honest, log_key, 2))["status"] == "ok"
        finally:
            worker.close()
    # A restarted witness remembers what it cosigned (state file in the node directory).
    with open_node(tmp_path / "h1") as node:
        worker = NodeWorker(node, pin)
        try:
            assert worker.witness.latest_size(ORIGIN) == 3
            assert worker.handle_cosign(_request(forked, log_key, 3))["status"] != "ok"
        finally:
            worker.close()
